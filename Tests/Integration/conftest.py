"""Fixtures for the real-cluster suite.

Parameters: proxy kind (`--proxy gproxy,gproxy-patroni,haproxy` or env INTEG_PROXIES, default
gproxy,gproxy-patroni) and cluster size (`--sizes 3,4` or env INTEG_SIZES, default 3,4). Each
combination is one session-scoped `env` parameter, ordered by cluster size, so every cluster is
brought up once and shared by all the proxies that run against it; a proxy is started once per
combination. gproxy-patroni runs at the seed's size (4) only when several sizes are asked for
(INTEG_PATRONI_ALL_SIZES=1 runs it at every size): its routing at 3 nodes adds nothing over 4.

Every env has its own check counter (check_counter.py) between the proxy and the Patroni REST APIs,
so each proxy's checks per second are counted from what reaches Patroni.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from patroni_cluster import PatroniCluster, free_ports, install_signal_handlers, seed_config_text  # noqa: E402
from proxy import KINDS, Proxy, binary_kind, find_gproxy, find_haproxy  # noqa: E402
from check_counter import CheckCounter  # noqa: E402

DEFAULT_PROXIES = "gproxy,gproxy-patroni"
SEED_SIZE = 4


def pytest_addoption(parser):
    parser.addoption("--proxy", default=None,
                     help="comma list of proxies to test: gproxy,gproxy-patroni,haproxy "
                          f"(default: $INTEG_PROXIES or {DEFAULT_PROXIES})")
    parser.addoption("--sizes", default=None, help="comma list of cluster sizes (default: $INTEG_SIZES or 3,4)")


def _list(config, opt, env, default):
    raw = config.getoption(opt) or os.environ.get(env) or default
    return [x.strip() for x in raw.split(",") if x.strip()]


def pytest_configure(config):
    install_signal_handlers()


def pytest_generate_tests(metafunc):
    if "env" not in metafunc.fixturenames:
        return
    proxies = _list(metafunc.config, "--proxy", "INTEG_PROXIES", DEFAULT_PROXIES)
    bad = [p for p in proxies if p not in KINDS]
    if bad:
        raise pytest.UsageError(f"unknown proxy kind(s) {bad}: use {', '.join(KINDS)}")
    sizes = [int(s) for s in _list(metafunc.config, "--sizes", "INTEG_SIZES", "3,4")]
    patroni_sizes = sizes
    if SEED_SIZE in sizes and os.environ.get("INTEG_PATRONI_ALL_SIZES") != "1":
        patroni_sizes = [SEED_SIZE]
    combos = [(n, p) for n in sizes for p in proxies if p != "gproxy-patroni" or n in patroni_sizes]
    metafunc.parametrize("env", combos, ids=[f"{p}-{n}n" for n, p in combos], indirect=True, scope="session")


class _Clusters:
    """One live cluster at a time: asking for another size stops the previous one."""

    def __init__(self):
        self.current: PatroniCluster | None = None

    def get(self, n: int) -> PatroniCluster:
        if self.current is not None and self.current.n == n and not self.current._stopped:
            return self.current
        if self.current is not None:
            self.current.stop()
        self.current = PatroniCluster(n).start()
        return self.current

    def close(self):
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
def clusters(request):
    c = _Clusters()
    request.addfinalizer(c.close)
    return c


class Env:
    def __init__(self, kind: str, cluster: PatroniCluster, proxy: Proxy, ports: dict,
                 counter: CheckCounter | None = None):
        self.kind, self.cluster, self.proxy, self.ports = kind, cluster, proxy, ports
        self.counter = counter
        # when the proxy last agreed with the cluster with no event since (steady-state check rate)
        self.steady_since: float | None = None
        self.counter_ports: dict[str, int] = {}
        # the seed's size, or the only sizes asked for: where record-only probes run
        self.record_size = True

    @property
    def patroni(self) -> bool:
        return self.kind == "gproxy-patroni"

    def config_text(self, ports: dict, counted: bool = True) -> str:
        """This variant's config for `ports`; checks go through the counter unless counted=False."""
        cp = self.counter_ports if (counted and self.counter) else None
        return seed_config_text(self.cluster, ports, check_ports=cp, patroni=self.patroni)

    @property
    def n(self) -> int:
        return self.cluster.n


@pytest.fixture(scope="session")
def env(request, clusters):
    n, kind = request.param
    if kind == "haproxy" and not find_haproxy():
        pytest.skip("haproxy not installed")
    if binary_kind(kind) == "gproxy" and not find_gproxy():
        pytest.fail("gproxy binary not found: set GPROXY_BIN or run `swift build -c release --static-swift-stdlib --product gproxy`")
    cluster = clusters.get(n)
    w, r, s, *cports = free_ports(3 + n)
    ports = {"write": w, "read": r, "stats": s}
    proxy = Proxy(kind, "", ports)
    request.addfinalizer(proxy.cleanup)
    counter = None
    counter_ports = {}
    if os.environ.get("INTEG_COUNT_CHECKS", "1") != "0":
        counter_ports = {node.name: p for node, p in zip(cluster.nodes, cports)}
        counter = CheckCounter({counter_ports[node.name]: node.api_port for node in cluster.nodes},
                               os.path.join(proxy.dir, "checks.log"))
        request.addfinalizer(counter.stop)
        counter.start()
    e = Env(kind, cluster, proxy, ports, counter)
    e.counter_ports = counter_ports
    sizes = [int(x) for x in _list(request.config, "--sizes", "INTEG_SIZES", "3,4")]
    e.record_size = n == SEED_SIZE or SEED_SIZE not in sizes
    with open(proxy.cfg, "w") as f:
        f.write(e.config_text(ports))
    proxy.start()
    yield e
    if not proxy.alive():
        print(f"\n{kind} died during the tests; log tail:\n{proxy.log_tail()}")
