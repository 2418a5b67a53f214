"""Faults on the real Patroni cluster, through a proxy of each variant started for the test.

(a) the leader's Patroni hangs (SIGSTOP; PostgreSQL keeps serving) for less than the leader key's TTL;
(b) the leader is cut off (its PostgreSQL, REST API and raft ports dropped by nftables, its Patroni
    frozen) until another member is elected, then comes back as a replica;
(c) a replica's postmaster is killed (kill -9);
(d) one member's REST API answers just inside the check timeout (no flapping);
(e) no leader at all (raft quorum lost: a majority of Patroni processes frozen) — Patroni-aware only;
(f) `patroni ... discover`: a member added to the running cluster joins both backends, a removed one
    leaves them with its sessions cut — Patroni-aware only.

Which variants: the seed-config variants (`gproxy`, `haproxy`) run at the smallest cluster size of
the run; `gproxy-patroni` wherever it runs (the CI default: 4 nodes). Each test starts its own proxy
(fresh ports, fresh state) against the session's cluster and leaves the cluster healthy: frozen
Patroni processes are continued, the nftables table is deleted, removed members are reaped by pid.

"Cut off" in (b): on one loopback address a packet filter cannot separate the leader's raft traffic
from its partners' (pysyncobj connects from the greater address to the smaller, so the leader's own
outgoing raft connections carry only the partner's port), and without the DCS half of the partition
the leader keeps its raft lock and no election happens. So the leader's PostgreSQL, REST API and raft
ports are dropped both ways (`table inet gproxy_test_<pid>`) *and* its Patroni process, which hosts its
raft node, is frozen; both are undone together.

Seed-config variants record what happens (perf/out/faults-<proxy>.txt). When haproxy runs in the same
session, gproxy's outcome (marked DOWN or not, held session cut or not) must equal haproxy's; otherwise
gproxy is held to HAProxy's documented behaviour.
"""
from __future__ import annotations

import atexit
import os
import select
import shutil
import subprocess
import threading
import time
import types
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from check_counter import CheckCounter
from patroni_cluster import EXTRA_CLEANUPS, free_ports, log, seed_config_text
from proxy import REPO, Proxy
from test_real_cluster import CRASH_WINDOW_S, Load, all_writers_back, connect, query1, settle, stats_rows

HANG_S = 13.0            # (a): below the leader key's TTL (20 s), so no election; seed: < 3 failed checks
FAILOVER_SLACK = 0.5     # (b): writes back and the old leader's sessions cut within election + this
QUEUE_TIMEOUT_S = 10.0   # `timeout queue` default in Patroni-aware mode
SLOW_API_S = 2.4         # (d): 80 % of the write listen's check timeout (inter 3 s, no `timeout check`)
FLAP_WINDOW_S = 15.0
FALL_SEED = 3            # the seed's write listen: inter 3s fall 3 rise 2

_OUTCOMES: dict[tuple[str, int], dict[str, dict]] = {}   # (scenario, nodes) → kind → outcome


# --------------------------------------------------------------------------- harness

def _sizes(config) -> list[int]:
    raw = config.getoption("--sizes") or os.environ.get("INTEG_SIZES") or "3,4"
    return [int(x) for x in raw.split(",") if x.strip()]


@pytest.fixture
def fenv(env, request):
    """The session's env, restricted (seed variants: smallest size only), restored afterwards."""
    if not env.patroni and env.n != min(_sizes(request.config)):
        pytest.skip("seed-config fault tests run at the smallest cluster size of the run")
    env.cluster.wait_healthy(180)
    fw = Firewall()
    env.firewall = fw
    yield env
    fw.clear()
    EXTRA_CLEANUPS.remove(fw.clear)
    atexit.unregister(fw.clear)
    for name in list(env.cluster.frozen):
        env.cluster.thaw(name)
    env.cluster.reap_retired()
    env.cluster.wait_healthy(240)
    env.steady_since = None   # test_real_cluster's steady check-rate window restarts after a fault


class Firewall:
    """An nftables table of our own dropping loopback TCP to and from some ports."""

    def __init__(self):
        self.table = f"gproxy_test_{os.getpid()}"
        self.active = False
        # deleted on SIGTERM (run.sh's timeout) and at exit too, not only by the fixture
        EXTRA_CLEANUPS.append(self.clear)
        atexit.register(self.clear)

    @staticmethod
    def available() -> bool:
        return shutil.which("nft") is not None

    def drop_ports(self, ports: list[int]) -> None:
        plist = ", ".join(str(p) for p in ports)
        rules = (f"table inet {self.table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
                 f"  tcp dport {{ {plist} }} drop\n  tcp sport {{ {plist} }} drop\n }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True)
        self.active = True
        log(f"nft: dropping tcp ports {plist}")

    def clear(self) -> None:
        if self.active:
            subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)
            self.active = False
            log(f"nft: table {self.table} deleted")


class FaultProxy:
    """A proxy of the env's variant on fresh ports, for one test."""

    def __init__(self, env, check_ports: dict[str, int] | None = None, patroni_opts: str = ""):
        w, r, s = free_ports(3)
        self.ports = {"write": w, "read": r, "stats": s}
        text = seed_config_text(env.cluster, self.ports, check_ports=check_ports, patroni=env.patroni)
        if patroni_opts:
            text = text.replace("patroni primary", f"patroni primary {patroni_opts}")
            text = text.replace("patroni replica", f"patroni replica {patroni_opts}")
        self.proxy = Proxy(env.kind, text, self.ports)
        self.kind = env.kind
        self.cluster = env.cluster
        # what settle()/stats_rows()/Load expect of an env
        self.view = types.SimpleNamespace(cluster=env.cluster, ports=self.ports, kind=env.kind, steady_since=None)

    def __enter__(self):
        self.proxy.start()
        return self

    def __exit__(self, *exc):
        if not self.proxy.alive():
            log(f"{self.kind} died; log tail:\n{self.proxy.log_tail()}")
        elif any(exc):
            log(f"{self.kind} log tail:\n{self.proxy.log_tail(30)}")
        self.proxy.cleanup()

    def settle(self, timeout: float = 40.0) -> bool:
        return settle(self.view, timeout)

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """(pxname, svname) → the CSV row by column name."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['stats']}/;csv", timeout=3) as r:
            text = r.read().decode()
        header = text.splitlines()[0].lstrip("# ").split(",")
        out = {}
        for row in stats_rows(self.view):
            d = dict(zip(header, row))
            out[(d.get("pxname"), d.get("svname"))] = d
        return out


class StatsRecorder:
    """Polls the stats CSV every 0.25 s: when each server's status changed, and chkdown."""

    def __init__(self, fp: FaultProxy):
        self.fp = fp
        self.samples: list[tuple[float, dict]] = []
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_evt.is_set():
            try:
                self.samples.append((time.time(), self.fp.stats()))
            except Exception:  # noqa: BLE001
                pass
            self.stop_evt.wait(0.25)

    def stop(self):
        self.stop_evt.set()
        self.thread.join(5)

    def statuses(self, key) -> list[tuple[float, str]]:
        return [(t, s[key]["status"]) for t, s in self.samples if key in s]

    def first(self, key, pred) -> float | None:
        return next((t for t, st in self.statuses(key) if pred(st)), None)

    def changes(self, key, since: float = 0.0) -> list[tuple[float, str]]:
        """(time, status) at each change (the first sample included); times relative to `since`."""
        out, last = [], None
        for t, st in self.statuses(key):
            if st != last:
                out.append((round(t - since, 2), st))
                last = st
        return out


class HeldSession:
    """A session opened through the proxy and then left idle; a watcher thread notices the moment
    the proxy closes it (the socket turns readable with nothing asked: EOF), without sending
    anything (a statement to a node whose packets are dropped would block)."""

    def __init__(self, port: int | None = None, conn=None):
        self.conn = conn if conn is not None else connect(port)
        with self.conn.cursor() as cur:
            cur.execute("SELECT inet_server_port()")
            self.server_port = cur.fetchone()[0]
        self.closed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        p = select.poll()
        p.register(self.conn.fileno(), select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        while not self._stop.is_set():
            if p.poll(50):
                self.closed_at = time.time()
                return

    def close(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def still_works(self) -> bool:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone()[0] == 1
        except Exception:  # noqa: BLE001
            return False


def record(kind: str, n: int, scenario: str, row: dict) -> None:
    def fmt(v):
        return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {kind} nodes={n} {scenario} " + \
        " ".join(f"{k}={fmt(v)}" for k, v in row.items())
    log(line)
    path = os.path.join(REPO, "perf", "out", f"faults-{kind}.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(line + "\n")


def compare_with_haproxy(env, scenario: str, outcome: dict) -> bool:
    """Stores a seed variant's outcome; when both gproxy and haproxy ran this scenario at this size,
    asserts they agree. True when the comparison was made."""
    seen = _OUTCOMES.setdefault((scenario, env.n), {})
    seen[env.kind] = outcome
    if "gproxy" in seen and "haproxy" in seen:
        assert seen["gproxy"] == seen["haproxy"], f"{scenario}: gproxy {seen['gproxy']} != haproxy {seen['haproxy']}"
        return True
    return False


def ensure_writes_table(fp: FaultProxy):
    query1(fp.ports["write"], "CREATE TABLE IF NOT EXISTS integ_writes (k text PRIMARY KEY, at timestamptz DEFAULT now())")


def acked_on_leader(cluster, run: str) -> set[str]:
    leader = cluster.leader()
    conn = connect(cluster.pg_port(leader))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT k FROM integ_writes WHERE k LIKE %s", (run + ":%",))
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def readonly(writes) -> list:
    return [a for a in writes if not a.ok and "read-only" in a.err]


def err_kinds(attempts) -> dict:
    return dict(Counter(a.err.split(" DETAIL")[0][:80] for a in attempts if not a.ok).most_common(4))


# --------------------------------------------------------------------------- (a) API hang

def test_leader_patroni_hangs(fenv):
    """SIGSTOP of the leader's Patroni for HANG_S (< TTL 20 s: it keeps the leader key, PostgreSQL keeps
    serving). Patroni-aware: no session cut, no write lost or refused. Seed: as HAProxy — each timed-out
    check costs its timeout (inter, 3 s) plus inter, so `fall 3` cannot be reached in 13 s."""
    env, cluster = fenv, fenv.cluster
    with FaultProxy(env) as fp:
        assert fp.settle(), "proxy never agreed with the cluster"
        ensure_writes_table(fp)
        leader = cluster.leader()
        held = HeldSession(fp.ports["write"]).watch()
        assert held.server_port == cluster.pg_port(leader)
        load = Load(fp.view, f"hang-{uuid.uuid4().hex[:8]}")
        load.start()
        rec = StatsRecorder(fp)
        try:
            time.sleep(2.0)
            t_event = time.time()
            cluster.freeze(leader)
            time.sleep(HANG_S)
            cluster.thaw(leader)
            fp.settle(30)
            time.sleep(2.0)
        finally:
            cluster.thaw(leader)
            load.stop()
            rec.stop()
        writes, reads = load.snapshot()
        held_ok = held.closed_at is None and held.still_works()
        held.close()
        leader_after = cluster.leader()
        key = ("opengauss", leader)
        down_at = rec.first(key, lambda st: not st.startswith("UP"))
        failed = [a for a in writes if not a.ok]
        row = {"hang_s": HANG_S, "leader_marked_down_s": None if down_at is None else down_at - t_event,
               "held_session_cut": not held_ok, "write_attempts": len(writes), "failed_writes": len(failed),
               "readonly_refusals": len(readonly(writes)),
               "max_write_stall_s": max((a.latency for a in writes), default=None),
               "failed_reads": len([a for a in reads if not a.ok]), "status_changes": rec.changes(key, t_event)[1:],
               "leader_after": leader_after}
        record(env.kind, env.n, "leader-patroni-hangs", row)
        if failed:
            log(f"write errors: {err_kinds(writes)}")
    assert leader_after == leader, f"the leader changed during a {HANG_S}s hang: {leader} -> {leader_after}"
    if env.patroni:
        assert held_ok, "the session held to the leader was cut while only its Patroni hung"
        assert not failed, f"{len(failed)} writes failed: {err_kinds(writes)}"
        assert not readonly(writes)
    else:
        outcome = {"marked_down": down_at is not None, "held_session_cut": not held_ok}
        if not compare_with_haproxy(env, "leader-patroni-hangs", outcome):
            assert outcome == {"marked_down": False, "held_session_cut": False}, outcome
            assert not failed, f"{len(failed)} writes failed: {err_kinds(writes)}"


# --------------------------------------------------------------------------- (b) leader cut off

def test_leader_cut_off(fenv):
    """The leader's PostgreSQL, REST API and raft ports dropped both ways and its Patroni frozen until
    another member is elected; then everything is restored and it rejoins as a replica."""
    env, cluster = fenv, fenv.cluster
    if not Firewall.available():
        pytest.skip("nft not installed (apt-get install -y nftables)")
    with FaultProxy(env) as fp:
        assert fp.settle(), "proxy never agreed with the cluster"
        ensure_writes_table(fp)
        old = cluster.leader()
        node = cluster.node(old)
        old_port = node.pg_port
        held = HeldSession(fp.ports["write"]).watch()
        assert held.server_port == old_port
        load = Load(fp.view, f"cutoff-{uuid.uuid4().hex[:8]}")
        load.start()
        rec = StatsRecorder(fp)
        try:
            time.sleep(2.0)
            t_event = time.time()
            env.firewall.drop_ports([node.pg_port, node.api_port, node.raft_port])
            # `nft -f` takes a few ms: a write sent before its rules were in place may still be
            # acknowledged by the old leader (CI saw one at +0.00 s); "after the cut" starts here.
            t_cut = time.time()
            cluster.freeze(old)
            new, election_s = cluster.wait_for_new_leader(old, timeout=90, skip=frozenset({old}), since=t_event)
            new_port = cluster.pg_port(new)
            log(f"{env.kind}/{env.n}n cut-off: new leader {new} after {election_s:.2f}s")
            deadline = t_event + election_s + 40
            resumed_s = None
            while time.time() < deadline:
                writes, _ = load.snapshot()
                ok_new = [a.t1 for a in writes if a.ok and a.port == new_port and a.t0 >= t_event]
                if ok_new and held.closed_at is not None:
                    resumed_s = min(ok_new) - t_event
                    break
                time.sleep(0.1)
            if resumed_s is None:
                ok_new = [a.t1 for a in load.snapshot()[0] if a.ok and a.port == new_port and a.t0 >= t_event]
                resumed_s = min(ok_new) - t_event if ok_new else None
            time.sleep(2.0)
            # the partition heals: the old leader comes back and must rejoin as a replica
            t_heal = time.time()
            env.firewall.clear()
            cluster.thaw(old)
            while time.time() < t_heal + 180 and old not in cluster.replicas():
                time.sleep(0.2)
            rejoin_s = time.time() - t_heal
            assert old in cluster.replicas(), f"{old} did not rejoin as a streaming replica: {cluster.members()}"
            cluster.wait_healthy(180)
            fp.settle(40)
            time.sleep(3.0)
        finally:
            env.firewall.clear()
            cluster.thaw(old)
            load.stop()
            rec.stop()
            held.close()
        writes, reads = load.snapshot()
        present = acked_on_leader(cluster, load.run)
        acked = [a for a in writes if a.ok]
        lost = [a for a in acked if a.key not in present]
        crash = [a for a in lost if a.port == old_port and t_event - CRASH_WINDOW_S <= a.t1 <= t_event + CRASH_WINDOW_S]
        stray = [a for a in acked if a.t0 > t_cut and a.port != new_port]
        back_s = all_writers_back(writes, t_event, new_port)
        cut_s = None if held.closed_at is None else held.closed_at - t_event
        old_down = rec.first(("opengauss", old), lambda st: not st.startswith("UP"))
        new_up = rec.first(("opengauss", new), lambda st: st.startswith("UP"))
        failed = [a for a in writes if not a.ok]
        row = {"election_s": election_s, "writes_resumed_s": resumed_s, "all_writers_back_s": back_s,
               "old_session_cut_s": cut_s, "old_marked_down_s": None if old_down is None else old_down - t_event,
               "new_marked_up_s": None if new_up is None else new_up - t_event, "rejoin_s": rejoin_s,
               "write_attempts": len(writes), "failed_writes": len(failed),
               "readonly_refusals": len(readonly(writes)), "acked_not_on_new_leader": len(stray),
               "lost_acked": len(lost), "lost_in_crash_window": len(crash),
               "max_write_stall_s": max((a.latency for a in writes), default=None),
               "failed_reads_after_heal": len([a for a in reads if not a.ok and a.t0 > t_heal + rejoin_s])}
        record(env.kind, env.n, "leader-cut-off", row)
        log(f"write errors: {err_kinds(writes)}")
    assert resumed_s is not None, f"writes never resumed on {new}"
    assert cut_s is not None, "the session held to the cut-off leader was never closed"
    assert not stray, f"{len(stray)} writes acknowledged by a node other than the new leader after the cut: " \
                      f"{[(a.port, round(a.t0 - t_cut, 3)) for a in stray][:5]}"
    other_lost = [a for a in lost if a not in crash]
    assert not other_lost, f"{len(other_lost)} acknowledged writes missing"
    if env.patroni:
        assert not readonly(writes), f"{len(readonly(writes))} writes refused by a read-only node"
        assert resumed_s <= election_s + FAILOVER_SLACK, \
            f"writes resumed {resumed_s:.2f}s after the cut, election took {election_s:.2f}s"
        # ambiguous (dropped) checks never cut a writer's sessions; the new leader's confirmation does
        assert election_s - 1.0 <= cut_s <= election_s + FAILOVER_SLACK, \
            f"held session cut at {cut_s:.2f}s, election at {election_s:.2f}s"
    else:
        outcome = {"old_marked_down": old_down is not None, "held_session_cut": cut_s is not None}
        if not compare_with_haproxy(env, "leader-cut-off", outcome):
            # HAProxy: `fall` timed-out checks mark the old leader DOWN (shutdown-sessions cuts the held
            # session), `rise` passing checks bring the new one UP
            assert outcome == {"old_marked_down": True, "held_session_cut": True}, outcome
            assert new_up is not None


# --------------------------------------------------------------------------- (c) replica postmaster killed

def test_replica_postmaster_killed(fenv):
    """kill -9 of a replica's postmaster: new connections through the read port keep being served."""
    env, cluster = fenv, fenv.cluster
    with FaultProxy(env) as fp:
        assert fp.settle(), "proxy never agreed with the cluster"
        victim = cluster.replicas()[0]
        reads: list[tuple[float, float, bool, int | None, str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                t0 = time.time()
                try:
                    conn = connect(fp.ports["read"])
                    try:
                        with conn.cursor() as cur:
                            cur.execute("SELECT inet_server_port()")
                            res = (t0, time.time(), True, cur.fetchone()[0], "")
                    finally:
                        conn.close()
                except Exception as e:  # noqa: BLE001
                    res = (t0, time.time(), False, None, str(e).strip().replace("\n", " ")[:120])
                with lock:
                    reads.append(res)
                stop.wait(max(0.0, 0.05 - (time.time() - t0)))

        ts = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
        rec = StatsRecorder(fp)
        for t in ts:
            t.start()
        try:
            time.sleep(1.5)
            t_event = time.time()
            killed = cluster.kill_postmaster(victim)
            # Patroni restarts it: wait for a new postmaster, the replica streaming, the proxy agreeing
            node = cluster.node(victim)
            while time.time() < t_event + 60 and node.postmaster_pid() in (None, killed):
                time.sleep(0.1)
            restarted_s = time.time() - t_event
            key = ("opengauss_balance", victim)
            while time.time() < t_event + 60 and rec.first(key, lambda st: not st.startswith("UP")) is None \
                    and time.time() < t_event + restarted_s + 3:
                time.sleep(0.1)     # give the proxy the chance to notice (it may not, if the restart is quick)
            cluster.wait_healthy(120)
            while time.time() < t_event + 60 and not (rec.samples and rec.samples[-1][1].get(key, {}).get("status", "").startswith("UP")):
                time.sleep(0.1)
            back_s = time.time() - t_event
            fp.settle(40)
            time.sleep(2.0)
        finally:
            stop.set()
            for t in ts:
                t.join(10)
            rec.stop()
        after = [r for r in reads if r[0] >= t_event]
        failed = [r for r in after if not r[2]]
        down_at = rec.first(key, lambda st: not st.startswith("UP"))
        row = {"victim": victim, "postmaster_restarted_s": restarted_s, "replica_back_in_proxy_s": back_s,
               "victim_marked_down_s": None if down_at is None else down_at - t_event,
               "reads_after_kill": len(after), "failed_reads": len(failed),
               "first_fail_s": min((r[0] - t_event for r in failed), default=None),
               "last_fail_s": max((r[0] - t_event for r in failed), default=None),
               "failed_latency_s": [round(r[1] - r[0], 2) for r in failed][:5],
               "victim_status": rec.changes(key, t_event)[1:],
               "errors": dict(Counter(r[4][:70] for r in failed).most_common(3))}
        record(env.kind, env.n, "replica-postmaster-killed", row)
    assert after, "no read attempted after the kill"
    tail = [r for r in after if r[0] > after[-1][0] - 2.0]
    assert all(r[2] for r in tail), f"reads still failing at the end: {[r[4] for r in tail if not r[2]][:3]}"
    others = {cluster.pg_port(r) for r in cluster.replicas() if r != victim}
    assert any(r[2] and r[3] in others for r in after if r[0] < t_event + back_s), \
        "no read was served by the other replicas while the victim was down"
    if env.patroni:
        # A read already sent to the victim before the proxy took it out (Patroni's 503, within one check)
        # retries that replica (`retries`, 1 s apart; the seed has no `option redispatch`) and can fail,
        # as can one that reached PostgreSQL at the very moment of the kill; every read that starts once
        # the victim is out must be served, and it stays out until its API confirms it again (no read
        # meets "the database system is starting up").
        assert down_at is not None, f"the proxy never took {victim} out of the read backend"
        late = [r for r in failed if r[0] > down_at]
        assert not late, f"{len(late)} reads that started after {victim} was taken out failed: " \
                         f"{[(round(r[0] - t_event, 2), r[4][:60]) for r in late][:3]}"


# --------------------------------------------------------------------------- (d) slow API, no flapping

def test_slow_api_does_not_flap(fenv):
    """The leader's REST API answers SLOW_API_S after each check request (80 % of the check timeout):
    over FLAP_WINDOW_S no server changes status and chkdown does not move."""
    env, cluster = fenv, fenv.cluster
    leader = cluster.leader()
    lport = free_ports(1)[0]
    tmp_log = os.path.join(REPO, "perf", "out", f"slow-api-{env.kind}.log")
    os.makedirs(os.path.dirname(tmp_log), exist_ok=True)
    slow = CheckCounter({lport: cluster.api_port(leader)}, tmp_log, delays={lport: SLOW_API_S}).start()
    try:
        with FaultProxy(env, check_ports={leader: lport}) as fp:
            assert fp.settle(60), "proxy never agreed with the cluster"
            ensure_writes_table(fp)
            time.sleep(1.0)
            before = fp.stats()
            rec = StatsRecorder(fp)
            load = Load(fp.view, f"slow-{uuid.uuid4().hex[:8]}")
            load.start()
            t0 = time.time()
            try:
                time.sleep(FLAP_WINDOW_S)
            finally:
                load.stop()
                rec.stop()
            after = fp.stats()
            checks = slow.requests(t0, time.time())
    finally:
        slow.stop()
        try:
            os.unlink(tmp_log)
        except OSError:
            pass
    writes, _ = load.snapshot()
    servers = [(px, n.name) for px in ("opengauss", "opengauss_balance") for n in cluster.nodes]
    changes = {k: rec.changes(k) for k in servers}
    flapped = {k: v for k, v in changes.items() if len(v) > 1}
    chkdown = {k: (before[k].get("chkdown"), after[k].get("chkdown")) for k in servers if k in before and k in after}
    moved = {k: v for k, v in chkdown.items() if v[0] != v[1]}
    failed = [a for a in writes if not a.ok]
    record(env.kind, env.n, "slow-api", {"delay_s": SLOW_API_S, "window_s": FLAP_WINDOW_S,
                                          "slow_checks": len(checks), "status_changes": sum(len(v) - 1 for v in changes.values()),
                                          "chkdown_moved": len(moved), "write_attempts": len(writes),
                                          "failed_writes": len(failed)})
    assert checks, "no check went through the slow forwarder"
    assert not flapped, f"status changed under a slow API: {flapped}"
    assert not moved, f"chkdown moved: {moved}"
    assert not failed, f"{len(failed)} writes failed: {err_kinds(writes)}"


# --------------------------------------------------------------------------- (e) no leader

def _primary_status(cluster, name: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.api_port(name)}/primary", timeout=1.5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_no_leader_writes_wait_then_end(fenv):
    """Raft quorum lost (the Patroni processes of a majority frozen, all but the leader's): the leader
    demotes itself; new writes wait in gproxy's queue and end at `timeout queue`, none reaches a
    read-only node. Then quorum is back and writes resume."""
    env, cluster = fenv, fenv.cluster
    if not env.patroni:
        pytest.skip("Patroni-aware mode only")
    with FaultProxy(env) as fp:
        assert fp.settle(), "proxy never agreed with the cluster"
        ensure_writes_table(fp)
        leader = cluster.leader()
        victims = cluster.replicas()[: env.n - env.n // 2]
        load = Load(fp.view, f"noleader-{uuid.uuid4().hex[:8]}")
        load.start()
        rec = StatsRecorder(fp)
        try:
            time.sleep(2.0)
            t_event = time.time()
            for v in victims:
                cluster.freeze(v)
            t_demoted = None
            while time.time() < t_event + 60:
                if _primary_status(cluster, leader) not in (200, None):
                    t_demoted = time.time()
                    break
                time.sleep(0.1)
            assert t_demoted is not None, f"{leader} never stopped answering 200 on /primary without quorum"
            log(f"{leader} no longer primary {t_demoted - t_event:.2f}s after quorum loss")
            time.sleep(QUEUE_TIMEOUT_S + 8.0)
            t_back = time.time()
            for v in victims:
                cluster.thaw(v)
            new, _ = cluster.wait_for_new_leader("", timeout=90)
            cluster.wait_healthy(180)
            fp.settle(40)
            time.sleep(3.0)
        finally:
            for v in victims:
                cluster.thaw(v)
            load.stop()
            rec.stop()
        writes, _ = load.snapshot()
        new_port = cluster.pg_port(cluster.leader())
        # the proxy took the writer out (a failed connect, or Patroni's 503): as seen in its stats (0.25 s
        # polls), and as seen by the writers — the last write the old leader answered (acknowledged, or
        # refused at once while it shut down to demote itself)
        out_at = rec.first(("opengauss", leader), lambda st: not st.startswith("UP")) or t_demoted
        reached = [a for a in writes if a.t1 < t_back and (a.ok or a.latency < 1.0)]
        last_reach = max((a.t1 for a in reached), default=t_event)
        # writes that started with no writer in the proxy, early enough to time out before quorum returned
        gap = [a for a in writes if last_reach < a.t0 <= t_back - QUEUE_TIMEOUT_S - 0.5]
        gap_ok = [a for a in gap if a.ok]
        gap_failed = [a for a in gap if not a.ok]
        before = [a for a in writes if not a.ok and t_event <= a.t0 < out_at]
        row = {"demoted_after_s": t_demoted - t_event, "writer_out_in_proxy_s": out_at - t_event,
               "last_write_reaching_old_leader_s": last_reach - t_event,
               "no_leader_s": t_back - t_demoted, "failed_before_out": len(before),
               "writes_in_gap": len(gap), "gap_acked": len(gap_ok), "gap_failed": len(gap_failed),
               "gap_fail_latency_min_s": min((a.latency for a in gap_failed), default=None),
               "gap_fail_latency_max_s": max((a.latency for a in gap_failed), default=None),
               "readonly_refusals": len(readonly(writes)),
               "resumed_after_quorum_s": min((a.t1 - t_back for a in writes if a.ok and a.t0 >= t_back
                                              and a.port == new_port), default=None)}
        record(env.kind, env.n, "no-leader", row)
        log(f"write errors (start s after quorum loss, latency s, error): "
            f"{[(round(a.t0 - t_event, 2), round(a.latency, 2), a.err[:70]) for a in writes if not a.ok]}")
    assert not readonly(writes), f"{len(readonly(writes))} writes refused by a read-only node"
    recovering = [a for a in writes if not a.ok and ("recovery" in a.err or "starting up" in a.err)]
    assert not recovering, f"{len(recovering)} writes reached a node in recovery: {recovering[0].err[:120]}"
    assert last_reach <= out_at + 0.5, \
        f"writes still reached {leader} {last_reach - out_at:.2f}s after the proxy took it out"
    assert gap, "no write was attempted while there was no leader"
    assert not gap_ok, f"{len(gap_ok)} writes acknowledged while no leader existed: " \
                       f"{[(a.port, round(a.t0 - t_event, 2)) for a in gap_ok][:3]}"
    # each ended cleanly at `timeout queue` (the proxy closed it), not earlier and not hanging
    assert all(QUEUE_TIMEOUT_S - 0.5 <= a.latency <= QUEUE_TIMEOUT_S + 2.0 for a in gap_failed), \
        f"queued writes did not end at timeout queue: {[round(a.latency, 2) for a in gap_failed]}"
    assert row["resumed_after_quorum_s"] is not None, "writes did not resume once quorum was back"


# --------------------------------------------------------------------------- (f) discovery

def test_discover_member_joins_and_leaves(fenv):
    """`patroni primary|replica discover`: a member added to the running cluster appears in both
    backends and serves reads; once removed from the cluster it leaves both and its sessions are cut.
    Two proxies with the same configuration (the two-node deployment of issue #13) each discover it
    on their own and agree."""
    env, cluster = fenv, fenv.cluster
    if not env.patroni:
        pytest.skip("Patroni-aware mode only")
    with FaultProxy(env, check_ports={}, patroni_opts="discover") as fp, \
            FaultProxy(env, check_ports={}, patroni_opts="discover") as peer:
        assert fp.settle() and peer.settle(), "a proxy never agreed with the cluster"
        t_add = time.time()
        node = cluster.add_node()
        member_s = time.time() - t_add
        name = node.name

        def is_replica_in(p):
            st = p.stats()
            w, r = st.get(("opengauss", name)), st.get(("opengauss_balance", name))
            return bool(w and r and r["status"].startswith("UP") and not w["status"].startswith("UP"))
        joined = peer_joined = None
        deadline = time.time() + 30
        while time.time() < deadline and (joined is None or peer_joined is None):
            if joined is None and is_replica_in(fp):
                joined = time.time() - t_add
            if peer_joined is None and is_replica_in(peer):
                peer_joined = time.time() - t_add
            time.sleep(0.2)
        assert joined is not None, f"{name} did not join the backends: {sorted(k for k in fp.stats())}"
        assert peer_joined is not None, f"{name} did not join the second proxy's backends: {sorted(k for k in peer.stats())}"
        # it serves: the read port's round-robin reaches it
        held = None
        seen = []
        for _ in range(3 * (cluster.n - 1)):
            c = connect(fp.ports["read"])
            with c.cursor() as cur:
                cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
                port, rec = cur.fetchone()
            seen.append(cluster.name_for_pg_port(port))
            assert rec is True
            if port == node.pg_port and held is None:
                held = c
            else:
                c.close()
        assert held is not None, f"reads never reached {name}: {seen}"
        hs = HeldSession(conn=held).watch()
        t_rm = time.time()
        cluster.remove_node(name)
        left = peer_left = None
        deadline = time.time() + 60

        def gone_from(p):
            st = p.stats()
            return ("opengauss", name) not in st and ("opengauss_balance", name) not in st
        while time.time() < deadline and (left is None or peer_left is None):
            if left is None and gone_from(fp) and hs.closed_at is not None:
                left = time.time() - t_rm
            if peer_left is None and gone_from(peer):
                peer_left = time.time() - t_rm
            time.sleep(0.25)
        cut_s = None if hs.closed_at is None else hs.closed_at - t_rm
        hs.close()
        cluster.reap_retired()
        plog = open(fp.proxy.log_path, errors="replace").read()
        row = {"member": name, "member_streaming_s": member_s, "joined_backends_s": joined,
               "peer_joined_s": peer_joined, "peer_left_s": peer_left,
               "reads_rotation": seen, "left_backends_s": left, "session_cut_s": cut_s,
               "left_logged": f"{name} left the Patroni cluster" in plog}
        record(env.kind, env.n, "discover", row)
    assert cut_s is not None, f"the session held to removed member {name} was not cut"
    assert left is not None, f"{name} still in the backends {60}s after leaving the cluster"
    assert peer_left is not None, f"{name} still in the second proxy's backends {60}s after leaving the cluster"
    assert row["left_logged"], "the proxy did not log the member leaving"
