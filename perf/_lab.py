"""Shared plumbing for the gproxy perf lab (bench.py, maxconn_stress.py).

Everything binds 127.0.0.1 only. Every process started here is tracked by pid and stopped by pid
(SIGTERM, then SIGKILL after a grace period) from a finally block, an atexit hook, and the
SIGINT/SIGTERM handlers -- never by name.
"""
from __future__ import annotations

import atexit
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NOFILE = 65536


# ----------------------------------------------------------------------------- limits, binaries

def raise_nofile(n: int = NOFILE) -> int:
    """Raise RLIMIT_NOFILE of this process (root may go past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in ((n, max(n, hard)), (min(n, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, want)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _child_setup():
    raise_nofile()
    os.setpgrp()  # own process group, so a ^C on the terminal reaches us first, not the children


def find_gproxy_bin() -> str | None:
    """$GPROXY_BIN, else the release build, else the debug build; None when there is none."""
    env = os.environ.get("GPROXY_BIN")
    if env:
        return env
    for rel in (".build/release/gproxy", ".build/debug/gproxy"):
        p = os.path.join(REPO, rel)
        if os.access(p, os.X_OK):
            return p
    return None


def gproxy_bin() -> str:
    found = find_gproxy_bin()
    if found:
        return found
    sys.exit("gproxy binary not found: build with `swift build -c release --static-swift-stdlib --product gproxy` or set GPROXY_BIN")


def need(tool: str) -> str:
    p = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.access(f"/usr/sbin/{tool}", os.X_OK) else None)
    if not p:
        sys.exit(f"{tool} not found (apt-get install -y {tool})")
    return p


# ----------------------------------------------------------------------------- process tracking

class Lab:
    """A scratch directory plus the processes started in it."""

    def __init__(self, prefix: str = "gproxy-perf-", keep: bool = False):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.keep = keep
        self.procs: list[subprocess.Popen] = []
        self._closed = False
        atexit.register(self.close)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, text: str) -> str:
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        out = open(self.path(name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=_child_setup, **kw)
        out.close()
        p.lab_name = name  # type: ignore[attr-defined]
        p.lab_argv = argv  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        try:
            with open(self.path(name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, p: subprocess.Popen | None, grace: float = 5.0) -> int | None:
        """Stop one process by its pid: SIGTERM, wait, SIGKILL."""
        if p is None:
            return None
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def close(self):
        if self._closed:
            return
        self._closed = True
        for p in list(reversed(self.procs)):
            self.stop(p, grace=3.0)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- network helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def echo_round_trips(port: int, stop, counts: dict, lock) -> None:
    """Connects back to back until `stop` is set: each connection sends a line through the proxy to
    an echo server and must read it back. Adds to counts["ok"] / counts["lost"] (refused, reset or
    a wrong answer) under `lock`."""
    ok = lost = 0
    n = 0
    while not stop.is_set():
        n += 1
        msg = f"ping {n}\n".encode()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
            if got == msg:
                ok += 1
            else:
                lost += 1
        except OSError:
            lost += 1
    with lock:
        counts["ok"] += ok
        counts["lost"] += lost


def http_get(port: int, path: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode(errors="replace")


# ----------------------------------------------------------------------------- /proc readers

def cpu_seconds(pid: int) -> float:
    """utime+stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def children(pid: int) -> list[int]:
    """Direct children of pid (nginx's workers under its master)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of pid and of its live children (a master process and its workers)."""
    total = cpu_seconds(pid)
    for c in children(pid):
        try:
            total += cpu_seconds(c)
        except OSError:
            pass
    return total


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of every thread of pid and of its children.
    A voluntary switch is the thread going to sleep (epoll_wait with nothing ready): each is one
    wake-up later."""
    vol = invol = 0
    for p in [pid] + children(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches:"):
                            invol += int(line.split()[1])
            except OSError:
                pass
    return vol, invol


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return status_kb(pid, "VmRSS")


def hwm_kb(pid: int) -> int:
    return status_kb(pid, "VmHWM")


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# ----------------------------------------------------------------------------- proxy configs

def proxy_cfg(listens: list[dict], *, nbthread: int, maxconn: int = 20000, stats_port: int | None = None,
              timeout_queue: str = "60s", extra_global: list[str] | None = None) -> str:
    """haproxy.cfg text understood by both gproxy and haproxy.

    listens: [{name, port, servers: [(name, port, maxconn|None)], options: [..], lines: [raw lines]}]
    """
    out = [
        "global",
        f"    nbthread {nbthread}",
        f"    maxconn {maxconn}",
    ] + [f"    {g}" for g in (extra_global or [])] + [
        "",
        "defaults",
        "    mode tcp",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        f"    timeout queue {timeout_queue}",
        "",
    ]
    for l in listens:
        out.append(f"listen {l['name']}")
        out.append(f"    bind 127.0.0.1:{l['port']}")
        out.append("    balance roundrobin")
        for o in l.get("options", []):
            out.append(f"    option {o}")
        for extra in l.get("lines", []):
            out.append(f"    {extra}")
        for (sname, sport, smax) in l["servers"]:
            out.append(f"    server {sname} 127.0.0.1:{sport}" + (f" maxconn {smax}" if smax else ""))
        out.append("")
    if stats_port:
        out += ["listen stats", "    mode http", f"    bind 127.0.0.1:{stats_port}", "    stats enable",
                "    stats uri /", "    timeout client 10s", ""]
    return "\n".join(out)


def proxy_argv(kind: str, cfg_path: str) -> list[str]:
    if kind == "gproxy":
        return [gproxy_bin(), "-f", cfg_path]
    return [need("haproxy"), "-db", "-f", cfg_path]


def check_cfg(kind: str, cfg_path: str) -> None:
    argv = proxy_argv(kind, cfg_path)
    argv.insert(1, "-c")
    r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_child_setup)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} refused the config (rc={r.returncode}):\n{r.stdout}{r.stderr}")


def backend_row(csv_text: str, backend: str) -> dict | None:
    for line in csv_text.splitlines():
        f = line.split(",")
        if len(f) > 4 and f[0] == backend and f[1] == "BACKEND":
            def num(x):
                try:
                    return int(x)
                except ValueError:
                    return 0
            return {"qcur": num(f[2]), "qmax": num(f[3]), "scur": num(f[4])}
    return None


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def machine_info() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "kernel": os.uname().release,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }
