"""Fixtures for the real-cluster suite.

Parameters: proxy kind (`--proxy gproxy,haproxy` or env INTEG_PROXIES, default gproxy) and
cluster size (`--sizes 3,4` or env INTEG_SIZES, default 3,4). Each combination is one
session-scoped `env` parameter, ordered by cluster size, so every cluster is brought up once
and shared by all the proxies that run against it; a proxy is started once per combination.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from patroni_cluster import PatroniCluster, free_ports, install_signal_handlers, seed_config_text  # noqa: E402
from proxy import Proxy, find_gproxy, find_haproxy  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--proxy", default=None,
                     help="comma list of proxies to test: gproxy,haproxy (default: $INTEG_PROXIES or gproxy)")
    parser.addoption("--sizes", default=None, help="comma list of cluster sizes (default: $INTEG_SIZES or 3,4)")


def _list(config, opt, env, default):
    raw = config.getoption(opt) or os.environ.get(env) or default
    return [x.strip() for x in raw.split(",") if x.strip()]


def pytest_configure(config):
    install_signal_handlers()


def pytest_generate_tests(metafunc):
    if "env" not in metafunc.fixturenames:
        return
    proxies = _list(metafunc.config, "--proxy", "INTEG_PROXIES", "gproxy")
    sizes = [int(s) for s in _list(metafunc.config, "--sizes", "INTEG_SIZES", "3,4")]
    combos = [(n, p) for n in sizes for p in proxies]
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
    def __init__(self, kind: str, cluster: PatroniCluster, proxy: Proxy, ports: dict):
        self.kind, self.cluster, self.proxy, self.ports = kind, cluster, proxy, ports

    @property
    def n(self) -> int:
        return self.cluster.n


@pytest.fixture(scope="session")
def env(request, clusters):
    n, kind = request.param
    if kind == "haproxy" and not find_haproxy():
        pytest.skip("haproxy not installed")
    if kind == "gproxy" and not find_gproxy():
        pytest.fail("gproxy binary not found: set GPROXY_BIN or run `swift build -c release --product gproxy`")
    cluster = clusters.get(n)
    w, r, s = free_ports(3)
    ports = {"write": w, "read": r, "stats": s}
    proxy = Proxy(kind, seed_config_text(cluster, ports), ports)
    request.addfinalizer(proxy.cleanup)
    proxy.start()
    e = Env(kind, cluster, proxy, ports)
    yield e
    if not proxy.alive():
        print(f"\n{kind} died during the tests; log tail:\n{proxy.log_tail()}")
