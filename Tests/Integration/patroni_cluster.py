"""A real Patroni cluster on 127.0.0.1 for the integration suite.

PostgreSQL 15 from Debian, Patroni from PyPI with its built-in raft DCS (no etcd).
Every node runs as the `postgres` OS user (PostgreSQL refuses root). Patroni runs from
a virtualenv built with the system interpreter in a directory `postgres` can read
(`$INTEG_VENV`, default /opt/gproxy-integ/venv): the pyenv interpreter under /root is not
readable by `postgres`.

Every process this module starts is recorded by pid and killed by pid on teardown
(fixture finalizer, atexit and SIGTERM), never by name.
"""
from __future__ import annotations

import atexit
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
VENV = os.environ.get("INTEG_VENV", "/opt/gproxy-integ/venv")
PG_USER = "postgres"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment

def ensure_venv() -> str:
    """Returns the path of the `patroni` executable, creating the venv when missing."""
    patroni = os.path.join(VENV, "bin", "patroni")
    if os.path.exists(patroni):
        return patroni
    log(f"creating Patroni venv in {VENV}")
    os.makedirs(os.path.dirname(VENV), exist_ok=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "patroni[raft]", "psycopg2-binary"],
                   check=True)
    subprocess.run(["chmod", "-R", "a+rX", VENV], check=True)
    return patroni


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bind to 0, keep all open until all are picked)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """All descendant pids of pid, read from /proc (children first-level, then deeper)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_pids_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return not any(pid_alive(p) for p in pids)


def http_get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


# --------------------------------------------------------------------------- cluster

@dataclass
class Node:
    name: str
    pg_port: int
    api_port: int
    raft_port: int
    dir: str
    proc: subprocess.Popen | None = None
    logfile: object = None
    extra_pids: set = field(default_factory=set)

    @property
    def data_dir(self) -> str:
        return os.path.join(self.dir, "data")

    @property
    def config_path(self) -> str:
        return os.path.join(self.dir, "patroni.yml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "patroni.log")

    def postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None


_LIVE_CLUSTERS: list["PatroniCluster"] = []
# more teardown for the SIGTERM handler (test_faults.py's nftables table); callers also register atexit
EXTRA_CLEANUPS: list = []
_CLEANUP_LOCK = threading.Lock()


def _cleanup_all() -> None:
    # non-blocking: a signal arriving while a cleanup is already running (in the main thread,
    # which the handler interrupts) must not deadlock on it; the running cleanup finishes the job
    if not _CLEANUP_LOCK.acquire(blocking=False):
        return
    try:
        for c in list(_LIVE_CLUSTERS):
            try:
                c.stop()
            except Exception as e:  # never let teardown raise from atexit
                log(f"cleanup error: {e!r}")
    finally:
        _CLEANUP_LOCK.release()


atexit.register(_cleanup_all)


def _on_sigterm(signum, frame):
    # `timeout` signals both the child and its process group, so a second SIGTERM follows the first:
    # ignore the rest while cleaning up, then leave at once.
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    log(f"signal {signum}: stopping everything this run started")
    from proxy import cleanup_all_proxies  # late import: proxy.py imports nothing from here
    from check_counter import stop_all_counters
    for fn in list(EXTRA_CLEANUPS):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup error: {e!r}")
    cleanup_all_proxies()
    stop_all_counters()
    _cleanup_all()
    os._exit(128 + signum)


def install_signal_handlers() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGHUP, _on_sigterm)


class PatroniCluster:
    def __init__(self, n: int, scope: str | None = None):
        self.n = n
        self.scope = scope or f"integ{n}-{os.getpid()}"
        self.patroni_bin = ensure_venv()
        self.tmp = tempfile.mkdtemp(prefix=f"gproxy-integ-{n}n-")
        pw = pwd.getpwnam(PG_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.chown(self.tmp, self.uid, self.gid)
        os.chmod(self.tmp, 0o755)
        ports = free_ports(3 * n)
        self.nodes: list[Node] = []
        for i in range(n):
            name = f"node{i + 1}"
            d = os.path.join(self.tmp, name)
            os.makedirs(d)
            os.chown(d, self.uid, self.gid)
            os.chmod(d, 0o700)
            self.nodes.append(Node(name, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2], d))
        self.bringup_seconds: float | None = None
        self._stopped = False
        self.frozen: set[str] = set()       # nodes whose Patroni is SIGSTOPped (fault tests)
        self.retired: list[Node] = []       # members removed from the cluster, reaped by pid in stop()

    # ---------------------------------------------------------------- config
    def _node_yaml(self, node: Node) -> str:
        partners = [f"127.0.0.1:{o.raft_port}" for o in self.nodes if o is not node]
        # JSON is valid YAML: no PyYAML needed on the harness side.
        hba = [
            "local all all trust",
            "host all all 127.0.0.1/32 trust",
            "host replication all 127.0.0.1/32 trust",
        ]
        cfg = {
            "scope": self.scope,
            "name": node.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{node.api_port}", "connect_address": f"127.0.0.1:{node.api_port}"},
            "raft": {
                "data_dir": os.path.join(node.dir, "raft"),
                "self_addr": f"127.0.0.1:{node.raft_port}",
                "partner_addrs": partners,
            },
            "bootstrap": {
                "dcs": {
                    "ttl": 20,            # Patroni's minimum
                    "loop_wait": 1,
                    "retry_timeout": 3,   # Patroni's minimum
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "primary_start_timeout": 0,  # a crashed primary fails over instead of restarting
                    "synchronous_mode": False,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "remove_data_directory_on_rewind_failure": True,
                        "remove_data_directory_on_diverged_timelines": True,
                        "use_slots": True,
                        "parameters": {
                            "max_connections": 50,
                            "shared_buffers": "16MB",
                            "fsync": "off",
                            "synchronous_commit": "on",
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "wal_keep_size": "64MB",
                            "max_worker_processes": 8,
                            "autovacuum": "off",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}",
                "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": node.data_dir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(node.dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "postgres"},
                    "rewind": {"username": "postgres"},
                },
                "parameters": {"unix_socket_directories": node.dir},
                "pg_hba": hba,
                "pg_ctl_timeout": 30,
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }
        return json.dumps(cfg, indent=1)

    # ---------------------------------------------------------------- lifecycle
    def _spawn(self, node: Node) -> None:
        with open(node.config_path, "w") as f:
            f.write(self._node_yaml(node))
        os.chown(node.config_path, self.uid, self.gid)
        node.logfile = open(node.log_path, "ab")
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "HOME": node.dir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        node.proc = subprocess.Popen(
            [self.patroni_bin, node.config_path],
            user=self.uid, group=self.gid, extra_groups=[], cwd=node.dir, env=env,
            stdin=subprocess.DEVNULL, stdout=node.logfile, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, timeout: float = 180) -> "PatroniCluster":
        _LIVE_CLUSTERS.append(self)
        t0 = time.time()
        log(f"starting {self.n}-node Patroni cluster in {self.tmp}")
        for node in self.nodes:
            self._spawn(node)
        self.wait_healthy(timeout)
        self.bringup_seconds = time.time() - t0
        log(f"cluster up in {self.bringup_seconds:.1f}s: leader {self.leader()}")
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        log(f"stopping cluster {self.scope}")
        # a frozen Patroni (SIGSTOP by a fault test) acts on SIGTERM only once continued
        for node in self.nodes + self.retired:
            self.thaw(node.name)
        self.nodes += [r for r in self.retired if r not in self.nodes]
        self.retired = []
        # 1) graceful: SIGTERM to every Patroni (it stops its postmaster, fast mode)
        pids = []
        for node in self.nodes:
            if node.proc and node.proc.poll() is None:
                pids.append(node.proc.pid)
        kill_pids(pids, signal.SIGTERM)
        wait_pids_gone(pids, 15)
        # 2) by pid: whatever survived, Patroni's descendants, every postmaster and its children
        for node in self.nodes:
            victims = []
            if node.proc:
                victims += [node.proc.pid] + descendants(node.proc.pid)
            pm = node.postmaster_pid()
            if pm:
                victims += [pm] + descendants(pm)
            victims += [p for p in node.extra_pids if pid_alive(p)]
            victims = [p for p in dict.fromkeys(victims) if pid_alive(p)]
            if victims:
                log(f"{node.name}: SIGKILL {victims}")
                kill_pids(victims)
                wait_pids_gone(victims, 5)
            if node.proc:
                try:
                    node.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            if node.logfile:
                node.logfile.close()
        if self in _LIVE_CLUSTERS:
            _LIVE_CLUSTERS.remove(self)
        if os.environ.get("INTEG_KEEP_TMP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")

    # ---------------------------------------------------------------- queries
    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def pg_port(self, name: str) -> int:
        return self.node(name).pg_port

    def api_port(self, name: str) -> int:
        return self.node(name).api_port

    def name_for_pg_port(self, port: int) -> str | None:
        return next((n.name for n in self.nodes if n.pg_port == port), None)

    def cluster_json(self, skip: frozenset = frozenset()) -> dict | None:
        """GET /cluster from the first node that answers (nodes in `skip` are not asked: a node whose
        API is frozen or cut off would cost a full timeout per poll)."""
        for node in self.nodes:
            if node.name in skip or node.name in self.frozen:
                continue
            try:
                return http_get_json(f"http://127.0.0.1:{node.api_port}/cluster", timeout=1.0)
            except (OSError, ValueError, urllib.error.URLError):
                continue
        return None

    def members(self, skip: frozenset = frozenset()) -> list[dict]:
        c = self.cluster_json(skip)
        return c.get("members", []) if c else []

    def leader(self, skip: frozenset = frozenset()) -> str | None:
        for m in self.members(skip):
            if m.get("role") == "leader" and m.get("state") == "running":
                return m["name"]
        return None

    def replicas(self) -> list[str]:
        return sorted(m["name"] for m in self.members()
                      if m.get("role") in ("replica", "sync_standby", "quorum_standby")
                      and m.get("state") == "streaming")

    def is_healthy(self) -> bool:
        ms = self.members()
        leaders = [m for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
        streaming = [m for m in ms if m.get("role") != "leader" and m.get("state") == "streaming"]
        return len(ms) == self.n and len(leaders) == 1 and len(streaming) == self.n - 1

    def wait_healthy(self, timeout: float = 120) -> None:
        """Until one leader is running and the N-1 others are streaming replicas."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.is_healthy():
                return
            for node in self.nodes:
                if node.proc and node.proc.poll() is not None:
                    raise RuntimeError(f"patroni {node.name} exited rc={node.proc.returncode}; "
                                       f"log tail:\n{self.log_tail(node.name)}")
            time.sleep(0.5)
        raise TimeoutError(f"cluster not healthy after {timeout}s: {json.dumps(self.members())}\n"
                           + "\n".join(self.log_tail(n.name, 15) for n in self.nodes))

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            with open(self.node(name).log_path, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
            return f"--- {name} ---\n" + "\n".join(data[-lines:])
        except OSError:
            return f"--- {name}: no log ---"

    # ---------------------------------------------------------------- events
    def kill_leader_postmaster(self) -> tuple[str, int]:
        """kill -9 the leader's postmaster. Returns (old leader name, killed pid)."""
        name = self.leader()
        if not name:
            raise RuntimeError("no leader")
        node = self.node(name)
        pid = node.postmaster_pid()
        if not pid:
            raise RuntimeError(f"no postmaster.pid for {name}")
        # the backends of a SIGKILLed postmaster exit by themselves on postmaster death;
        # remember them so teardown can reap any straggler by pid
        node.extra_pids.update(descendants(pid))
        os.kill(pid, signal.SIGKILL)
        log(f"kill -9 postmaster {pid} of leader {name}")
        return name, pid

    def switchover(self, candidate: str | None = None) -> str:
        """Planned switchover through the REST API (POST /switchover). Returns the old leader."""
        old = self.leader()
        if not old:
            raise RuntimeError("no leader")
        body = {"leader": old}
        if candidate:
            body["candidate"] = candidate
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port(old)}/switchover", data=json.dumps(body).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        # POST /switchover answers after the switchover has been carried out (or failed):
        # run it in the background so callers can time the event from its start.
        result: dict = {}

        def post():
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    result["status"] = r.status
                    result["body"] = r.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                result["status"] = e.code
                result["body"] = e.read().decode(errors="replace")
            except Exception as e:  # noqa: BLE001
                result["error"] = repr(e)
        t = threading.Thread(target=post, daemon=True)
        t.start()
        self._switchover_thread, self._switchover_result = t, result
        log(f"switchover requested from {old} to {candidate or 'any'}")
        return old

    def switchover_result(self, timeout: float = 60) -> dict:
        self._switchover_thread.join(timeout)
        return self._switchover_result

    def wait_for_new_leader(self, old: str, timeout: float = 60, skip: frozenset = frozenset(),
                            since: float | None = None) -> tuple[str, float]:
        """Polls /cluster until a running leader other than `old`. Returns (name, seconds since
        `since`, default the call)."""
        t0 = since if since is not None else time.time()
        deadline = time.time() + timeout
        while time.time() < deadline:
            ldr = self.leader(skip)
            if ldr and ldr != old:
                return ldr, time.time() - t0
            time.sleep(0.1)
        raise TimeoutError(f"no new leader after {timeout}s: {self.members()}")


    # ---------------------------------------------------------------- faults (test_faults.py)
    def freeze(self, name: str) -> None:
        """SIGSTOP the node's Patroni process (its REST API and its raft node hang; PostgreSQL, a
        separate process, keeps serving). `thaw` (also run by stop()) continues it."""
        node = self.node(name)
        os.kill(node.proc.pid, signal.SIGSTOP)
        self.frozen.add(name)
        log(f"SIGSTOP patroni {node.proc.pid} of {name}")

    def thaw(self, name: str) -> None:
        node = next((n for n in self.nodes + self.retired if n.name == name), None)
        if node is None or name not in self.frozen:
            return
        self.frozen.discard(name)
        if node.proc and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGCONT)
            log(f"SIGCONT patroni {node.proc.pid} of {name}")

    def kill_postmaster(self, name: str) -> int:
        """kill -9 one node's postmaster (Patroni restarts it). Returns the killed pid."""
        node = self.node(name)
        pid = node.postmaster_pid()
        if not pid:
            raise RuntimeError(f"no postmaster.pid for {name}")
        node.extra_pids.update(descendants(pid))
        os.kill(pid, signal.SIGKILL)
        log(f"kill -9 postmaster {pid} of {name}")
        return pid

    def add_node(self, timeout: float = 120) -> Node:
        """Adds a member to the running cluster: a new Patroni whose raft `partner_addrs` are the
        current members (Patroni's raft joins a running cluster by itself: dynamic membership), which
        clones a replica from the leader. Returns once it streams."""
        taken = {n.name for n in self.nodes + self.retired}
        i = len(taken) + 1
        while f"node{i}" in taken:
            i += 1
        name = f"node{i}"
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        os.chown(d, self.uid, self.gid)
        os.chmod(d, 0o700)
        pg, api, raft = free_ports(3)
        node = Node(name, pg, api, raft, d)
        self.nodes.append(node)
        self.n += 1
        self._spawn(node)
        log(f"added member {name} (pg {pg}, api {api}, raft {raft})")
        self.wait_healthy(timeout)
        return node

    def remove_node(self, name: str) -> Node:
        """Removes a replica member while its PostgreSQL keeps running: kill -9 of its Patroni (so
        nothing stops the database or deletes its data), then its raft node is removed from the raft
        cluster (the quorum is back to the remaining members). Its member key leaves /cluster when
        its TTL expires. The node's postmaster is reaped by `reap_retired` / stop()."""
        node = self.node(name)
        if self.leader() == name:
            raise RuntimeError(f"{name} is the leader")
        pm = node.postmaster_pid()
        if pm:
            node.extra_pids.update([pm] + descendants(pm))
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)
        self.nodes.remove(node)
        self.retired.append(node)
        self.n -= 1
        log(f"kill -9 patroni {node.proc.pid} of {name}; removing its raft node")
        self._raft_remove(f"127.0.0.1:{node.raft_port}")
        return node

    def _raft_remove(self, addr: str) -> None:
        code = ("import sys; from pysyncobj.utility import TcpUtility\n"
                "u = TcpUtility(timeout=5)\n"
                "for p in sys.argv[2:]:\n"
                "    try:\n"
                "        r = u.executeCommand(p, ['remove', sys.argv[1]])\n"
                "        print(p, r); break\n"
                "    except Exception as e: print(p, repr(e))\n")
        py = os.path.join(VENV, "bin", "python")
        partners = [f"127.0.0.1:{n.raft_port}" for n in self.nodes]
        r = subprocess.run([py, "-c", code, addr, *partners], capture_output=True, text=True, timeout=30)
        log(f"raft remove {addr}: {r.stdout.strip()} {r.stderr.strip()[-200:]}")

    def reap_retired(self) -> None:
        """Kills what is left of removed members (their postmasters and backends) by pid."""
        for node in self.retired:
            victims = [p for p in node.extra_pids if pid_alive(p)]
            pm = node.postmaster_pid()
            if pm:
                victims += [pm] + descendants(pm)
            victims = list(dict.fromkeys(p for p in victims if pid_alive(p)))
            if victims:
                log(f"{node.name} (removed): SIGKILL {victims}")
                kill_pids(victims)
                wait_pids_gone(victims, 5)
            if node.logfile:
                node.logfile.close()
                node.logfile = None
        self.retired = []


# --------------------------------------------------------------------------- seed config

SEED_TEMPLATE = """\
listen opengauss
    bind *:{write_port}
    option httpchk
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
{write_servers}

listen opengauss_balance
    bind *:{read_port}
        mode tcp
        option tcplog
        balance roundrobin
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
{read_servers}

listen stats
    mode http
    bind *:{stats_port}
    stats enable
    stats uri /
"""


PATRONI_WRITE_LINE = "    patroni primary"
PATRONI_READ_LINE = "    patroni replica"


def seed_config_text(cluster: PatroniCluster, ports: dict, check_ports: dict[str, int] | None = None,
                     patroni: bool = False) -> str:
    """The seed haproxy.cfg (shared/seed: listens opengauss, opengauss_balance, stats; no global or
    defaults) with the real nodes' addresses and ports {'write','read','stats'} replacing 5000/5001/7000.

    `check_ports` (node name → port) sends the checks somewhere else than the node's REST API port
    (the check counter in front of it). `patroni=True` is the gproxy-patroni variant: the same text
    plus one line in each listen, `patroni primary` (write) and `patroni replica` (read)."""
    cp = {n.name: (check_ports or {}).get(n.name, n.api_port) for n in cluster.nodes}
    w = "\n".join(f"    server {n.name} 127.0.0.1:{n.pg_port} maxconn 100 check port {cp[n.name]}"
                  for n in cluster.nodes)
    r = "\n".join(f"    server {n.name} 127.0.0.1:{n.pg_port} maxconn 100 check port {cp[n.name]} "
                  f"inter 5000 rise 2 fall 2" for n in cluster.nodes)
    text = SEED_TEMPLATE.format(write_port=ports["write"], read_port=ports["read"], stats_port=ports["stats"],
                                write_servers=w, read_servers=r)
    if patroni:
        lines = text.split("\n")
        out, section = [], None
        for ln in lines:
            if ln.startswith("listen "):
                section = ln.split()[1]
            out.append(ln)
            # right after the listen's `http-check expect` line, before default-server and the servers
            if ln.strip().startswith("http-check expect"):
                out.append(PATRONI_WRITE_LINE if section == "opengauss" else PATRONI_READ_LINE)
        text = "\n".join(out)
    return text


if __name__ == "__main__":  # manual smoke: python3 patroni_cluster.py 3
    install_signal_handlers()
    c = PatroniCluster(int(sys.argv[1]) if len(sys.argv) > 1 else 3).start()
    print(json.dumps(c.members(), indent=1))
    print(seed_config_text(c, {"write": 1, "read": 2, "stats": 3}))
    print(seed_config_text(c, {"write": 1, "read": 2, "stats": 3}, patroni=True))
    c.stop()
