#!/usr/bin/env python3
"""gproxy vs haproxy (copy, splice-auto, splice-request+response) vs nginx stream vs direct, side by side.

One command:  python3 perf/bench.py [--quick] [--reps N] [--no-write]

All targets run in the same invocation, interleaved per test (A B C D E, A B C D E, ...), for --reps
repetitions; the table shows medians (and the half-range as +-%). Proxies run with nbthread = cores.

Tests
  * bulk: iperf3 through a `mode tcp` listen to an iperf3 server, 1 and 4 streams, both directions
    (-R). Gbit/s (receiver side) and the proxy's CPU seconds per GB relayed: delta of utime+stime of
    the proxy pid (/proc/<pid>/stat) around the iperf3 run / bytes received.
  * HTTP through the TCP listen to nginx (a 16-byte static file), wrk -t1:
    new connection per request (-H 'Connection: close') -> conn/s, p50/p99, proxy CPU us per connection;
    keep-alive -> req/s, p50/p99, proxy CPU us per request.
  * memory: VmRSS of a fresh proxy with --idle idle connections open through it (to an echo server
    that holds them), minus VmRSS at rest -> bytes per idle connection.
  * database round trips: `pgbench -S -c16 -j2` (select-only, one query per transaction, pooled
    connections) against a throw-away local PostgreSQL 15 (perf/_pg.py) -> TPS, per-transaction
    latency p50/p99 (pgbench's transaction log), proxy CPU and proxy wake-ups (voluntary context
    switches of its threads) per transaction; then one counting pass per proxy with
    `perf stat -e raw_syscalls:sys_enter` attached: system calls per transaction.

"best other" is the best of the haproxy flavours and nginx stream for each row.

Results are appended to perf/RESULTS.md (dated section) unless --no-write.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402
import _pg  # noqa: E402

TARGETS = ["gproxy", "haproxy", "haproxy-splice-auto", "haproxy-splice-rr", "nginx", "direct"]
PROXIES = TARGETS[:-1]
LABEL = {"gproxy": "gproxy", "haproxy": "haproxy copy", "haproxy-splice-auto": "haproxy splice-auto",
         "haproxy-splice-rr": "haproxy splice-req+resp", "nginx": "nginx stream", "direct": "direct"}
OPTIONS = {"gproxy": [], "haproxy": [], "haproxy-splice-auto": ["splice-auto"],
           "haproxy-splice-rr": ["splice-request", "splice-response"]}
PG_CLIENTS = [16]
# The system calls a relay makes, counted one by one in the pgbench counting pass.
COUNTED_CALLS = ["epoll_wait", "epoll_pwait", "epoll_ctl", "read", "write", "recvfrom", "sendto", "splice",
                 "readv", "writev", "futex"]
BENCH_MAXCONN = 9800  # haproxy needs 2*maxconn+18 fds; the hard RLIMIT_NOFILE here is 20000


# ----------------------------------------------------------------------------- backends

def start_nginx(lab: _lab.Lab, port: int):
    www = lab.path("www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "tiny.txt"), "w") as f:
        f.write("hello, gproxy!\n!")  # 16 bytes
    tmp = lab.path("nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    conf = f"""
worker_processes 1;
master_process off;
daemon off;
pid {lab.path('nginx.pid')};
error_log {lab.path('nginx-error.log')} warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        location / {{ }}
    }}
}}
"""
    path = lab.write("nginx.conf", conf)
    p = lab.start("nginx", [_lab.need("nginx"), "-e", lab.path("nginx-error.log"), "-c", path, "-p", lab.dir])
    _lab.wait_port(port, proc=p)
    return p


def start_nginx_stream(lab: _lab.Lab, listens: list[dict], workers: int, tag: str):
    """nginx as a TCP proxy (stream module), `workers` worker processes, a reuseport listener each."""
    servers = "\n".join(
        f"    server {{ listen 127.0.0.1:{l['port']} reuseport backlog=4096; proxy_pass 127.0.0.1:{l['servers'][0][1]};"
        f" proxy_timeout 60s; proxy_connect_timeout 5s; }}" for l in listens)
    conf = f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes {workers};
worker_rlimit_nofile {2 * BENCH_MAXCONN + 100};
daemon off;
pid {lab.path(f'nginx-stream-{tag}.pid')};
error_log {lab.path(f'nginx-stream-{tag}-error.log')} warn;
events {{ worker_connections {BENCH_MAXCONN}; }}
stream {{
{servers}
}}
"""
    path = lab.write(f"nginx-stream-{tag}.conf", conf)
    argv = [_lab.need("nginx"), "-e", lab.path(f"nginx-stream-{tag}-error.log"), "-c", path, "-p", lab.dir]
    p = lab.start(f"nginx-stream-{tag}", argv)
    for l in listens:
        _lab.wait_port(l["port"], proc=p)
    p.repro = " ".join(argv)  # type: ignore[attr-defined]
    return p


def start_proxy(lab: _lab.Lab, kind: str, listens: list[dict], nbthread: int, tag: str):
    if kind == "nginx":
        return start_nginx_stream(lab, listens, nbthread, tag)
    exe = "gproxy" if kind == "gproxy" else "haproxy"
    for l in listens:
        l["options"] = OPTIONS[kind]
    # haproxy reserves 2 fds per pipe (maxpipes defaults to maxconn/4) on top of 2 per connection: cap
    # the pipes so maxconn still fits under the 20,000-fd hard limit.
    extra = ["maxpipes 100"] if OPTIONS[kind] else []
    cfg = lab.write(f"{kind}-{tag}.cfg", _lab.proxy_cfg(listens, nbthread=nbthread, maxconn=BENCH_MAXCONN,
                                                        extra_global=extra))
    _lab.check_cfg(exe, cfg)
    p = lab.start(f"{kind}-{tag}", _lab.proxy_argv(exe, cfg))
    for l in listens:
        _lab.wait_port(l["port"], proc=p)
    p.repro = " ".join(_lab.proxy_argv(exe, cfg)) + f"   # cfg: {cfg}"  # type: ignore[attr-defined]
    return p


# ----------------------------------------------------------------------------- measurements

def with_cpu(proc, fn):
    """fn's result plus the proxy's CPU seconds and context switches over the run (its threads and,
    for nginx, its worker processes)."""
    c0 = _lab.tree_cpu_seconds(proc.pid) if proc else None
    v0, i0 = _lab.context_switches(proc.pid) if proc else (0, 0)
    r = fn()
    if proc:
        if proc.poll() is not None:
            r["error"] = f"proxy exited with {proc.returncode} during the run"
        else:
            r["cpu_s"] = _lab.tree_cpu_seconds(proc.pid) - c0
            v1, i1 = _lab.context_switches(proc.pid)
            r["wakeups"], r["preempted"] = v1 - v0, i1 - i0
    return r


def with_syscall_count(proc, fn):
    """fn's result plus the system calls the proxy (all its threads, nginx's workers) made meanwhile,
    counted by the raw_syscalls:sys_enter tracepoint (perf stat; low overhead, exact count)."""
    perf = shutil.which("perf")
    if proc is None:
        return fn()
    if not perf:
        return {"error": "perf not installed (apt-get install -y linux-perf)"}
    pids = ",".join(str(p) for p in [proc.pid] + _lab.children(proc.pid))
    out = tempfile.NamedTemporaryFile(prefix="perfstat-", suffix=".txt", delete=False).name
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{c}" for c in COUNTED_CALLS]
    ps = subprocess.Popen([perf, "stat", "-x,", "-o", out, "-e", ",".join(events), "-p", pids],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        r = fn()
    finally:
        ps.send_signal(signal.SIGINT)
        ps.wait(10)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    m = re.search(r"^(\d+),,raw_syscalls:sys_enter", text, re.M)
    if m:
        r["syscalls"] = int(m.group(1))
        r["by_call"] = {c: int(x.group(1)) for c in COUNTED_CALLS
                        if (x := re.search(rf"^(\d+),,syscalls:sys_enter_{c},", text, re.M))}
    else:
        r["error"] = f"perf stat said: {text[-200:]!r}"
    return r


def iperf(port: int, secs: int, streams: int, reverse: bool) -> dict:
    argv = [_lab.need("iperf3"), "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-P", str(streams),
            "-O", "0", "-J", "--connect-timeout", "3000"] + (["-R"] if reverse else [])
    for attempt in range(4):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 30)
        except subprocess.TimeoutExpired:
            return {"error": f"iperf3 timed out: {' '.join(argv)}"}
        try:
            j = json.loads(r.stdout)
        except ValueError:
            j = {"error": (r.stdout + r.stderr)[-300:]}
        if "error" in j:
            if "busy" in j["error"] and attempt < 3:
                time.sleep(1.0)
                continue
            return {"error": f"iperf3: {j['error']}"}
        rcv = j["end"]["sum_received"]
        return {"bytes": rcv["bytes"], "gbps": rcv["bits_per_second"] / 1e9, "secs": rcv["seconds"]}
    return {"error": "iperf3 server busy"}


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(port: int, secs: int, conns: int, close: bool) -> dict:
    argv = [_lab.need("wrk"), "-t1", f"-c{conns}", f"-d{secs}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/tiny.txt")
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 30)
    except subprocess.TimeoutExpired:
        return {"error": "wrk timed out"}
    out = r.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or not rps:
        return {"error": f"wrk output not understood: {(out + r.stderr)[-300:]}"}
    secs_run = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}.get(m.group(3), 1.0)
    res = {"requests": int(m.group(1)), "rps": float(rps.group(1)), "secs": secs_run}
    for pct in ("50", "99"):
        lm = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if lm:
            res[f"p{pct}_ms"] = float(lm.group(1)) * _UNIT[lm.group(2)]
    errs = 0
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if se:
        errs += sum(int(x) for x in se.groups())
        res["socket_errors"] = se.group(0)
    nx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if nx:
        errs += int(nx.group(1))
    res["errors"] = errs
    return res


def idle_rss(lab: _lab.Lab, kind: str, n: int, nbthread: int, rep: int) -> dict:
    """Fresh proxy, RSS at rest, then n idle connections through it to a holding echo server."""
    eport, port = _lab.free_port(), _lab.free_port()
    stats = lab.path(f"idle-echo-{kind}-{rep}.json")
    echo = lab.start(f"idle-echo-{kind}-{rep}", [sys.executable, os.path.join(_lab.HERE, "echo_server.py"),
                                                 "--ports", str(eport), "--stats", stats])
    proxy = None
    socks: list[socket.socket] = []
    try:
        _lab.wait_port(eport, proc=echo)
        proxy = start_proxy(lab, kind, [{"name": "idle", "port": port, "servers": [("sink", eport, None)]}],
                            nbthread, f"idle{rep}")
        time.sleep(0.5)
        rest = _lab.rss_kb(proxy.pid)
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            socks.append(s)
        deadline = time.monotonic() + 60
        cur = 0
        while time.monotonic() < deadline:
            try:
                with open(stats) as f:
                    cur = json.load(f)[str(eport)]["current"]
            except (OSError, ValueError, KeyError):
                cur = 0
            if cur >= n or proxy.poll() is not None:
                break
            time.sleep(0.1)
        setup = time.monotonic() - t0
        time.sleep(1.0)
        if proxy.poll() is not None:
            return {"error": f"proxy exited with {proxy.returncode} with {len(socks)} idle connections; "
                             f"repro: {proxy.repro}"}
        loaded = _lab.rss_kb(proxy.pid)
        fds = _lab.fd_count(proxy.pid)
        for s in socks:
            s.close()
        socks = []
        time.sleep(1.0)
        after = _lab.rss_kb(proxy.pid) if proxy.poll() is None else None
        res = {"rest_kb": rest, "loaded_kb": loaded, "after_close_kb": after, "backend_conns": cur,
               "bytes_per_conn": (loaded - rest) * 1024 / n, "setup_s": setup, "proxy_fds": fds}
        if cur < n:
            res["error"] = f"only {cur}/{n} connections reached the backend"
        return res
    finally:
        for s in socks:
            s.close()
        lab.stop(proxy)
        lab.stop(echo)


# ----------------------------------------------------------------------------- report

def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def cell(vals: list) -> tuple[float | None, str]:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, "n/a"
    m = _lab.median(vals)
    spread = (max(vals) - min(vals)) / 2 / m * 100 if m else 0
    return m, fmt(m) + (f" ±{spread:.0f}%" if len(vals) > 1 else "")


def build_rows(data: dict, idle_n: int) -> list[tuple]:
    """(label, {target: [values]}, higher_is_better)."""
    rows = []

    def series(test, key, scale=1.0, per=None):
        out = {}
        for t in TARGETS:
            runs = data.get(test, {}).get(t, [])
            vals = []
            for r in runs:
                if "error" in r:
                    continue
                if per:
                    if r.get(key) is None or not r.get(per):
                        continue
                    vals.append(r[key] / r[per] * scale)
                elif r.get(key) is not None:
                    vals.append(r[key] * scale)
            out[t] = vals
        return out

    for streams in (1, 4):
        for rev in (False, True):
            test = f"iperf-P{streams}{'-R' if rev else ''}"
            d = "server->client (-R)" if rev else "client->server"
            rows.append((f"bulk {streams} stream{'s' if streams > 1 else ''} {d}: Gbit/s", series(test, "gbps"), True))
            rows.append((f"bulk {streams} stream{'s' if streams > 1 else ''} {d}: proxy CPU s/GB",
                         series(test, "cpu_s", 1e9, "bytes"), False))
    rows.append(("new conn/s (wrk, Connection: close)", series("wrk-close", "rps"), True))
    rows.append(("  close: latency p50 ms", series("wrk-close", "p50_ms"), False))
    rows.append(("  close: latency p99 ms", series("wrk-close", "p99_ms"), False))
    rows.append(("  close: proxy CPU us/connection", series("wrk-close", "cpu_s", 1e6, "requests"), False))
    rows.append(("  close: proxy CPU, % of one core", series("wrk-close", "cpu_s", 100, "secs"), None))
    rows.append(("keep-alive req/s (wrk)", series("wrk-ka", "rps"), True))
    rows.append(("  keep-alive: latency p50 ms", series("wrk-ka", "p50_ms"), False))
    rows.append(("  keep-alive: latency p99 ms", series("wrk-ka", "p99_ms"), False))
    rows.append(("  keep-alive: proxy CPU us/request", series("wrk-ka", "cpu_s", 1e6, "requests"), False))
    rows.append(("  keep-alive: proxy CPU, % of one core", series("wrk-ka", "cpu_s", 100, "secs"), None))
    rows.append((f"pgbench -S -c{PG_CLIENTS[0]} -j2 (pooled): TPS", series("pgbench", "tps"), True))
    rows.append(("  pgbench: latency p50 ms", series("pgbench", "p50_ms"), False))
    rows.append(("  pgbench: latency p99 ms", series("pgbench", "p99_ms"), False))
    rows.append(("  pgbench: proxy CPU us/transaction", series("pgbench", "cpu_s", 1e6, "requests"), False))
    rows.append(("  pgbench: proxy wake-ups/transaction", series("pgbench", "wakeups", 1, "requests"), False))
    rows.append(("  pgbench: proxy preemptions/1000 tx", series("pgbench", "preempted", 1000, "requests"), False))
    rows.append(("  pgbench: proxy system calls/transaction", series("pgbench-count", "syscalls", 1, "requests"), False))
    rows.append(("RSS at rest MiB", series("idle", "rest_kb", 1 / 1024), False))
    rows.append((f"RSS with {idle_n} idle conns MiB", series("idle", "loaded_kb", 1 / 1024), False))
    rows.append(("RSS bytes per idle connection", series("idle", "bytes_per_conn"), False))
    return rows


def render(rows) -> tuple[str, dict]:
    """higher: True/False picks the best haproxy; None marks an informational row (ratio vs plain haproxy)."""
    head = ["metric"] + [LABEL[t] for t in TARGETS] + ["gproxy / best other", "gproxy / direct"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios = {}
    for label, s, higher in rows:
        meds = {}
        cells = []
        for t in TARGETS:
            m, c = cell(s.get(t, []))
            meds[t] = m
            cells.append(c)
        hv = [(meds[t], t) for t in PROXIES[1:] if meds[t] is not None]
        if higher is None:  # informational row: no "best", compare with plain haproxy
            hv = [(meds[t], t) for t in ("haproxy",) if meds[t] is not None]
        best = (max(hv) if higher else min(hv)) if hv else (None, None)
        g = meds["gproxy"]
        r_best = f"{g / best[0]:.2f} (vs {LABEL[best[1]]})" if g is not None and best[0] else "n/a"
        r_dir = f"{g / meds['direct']:.2f}" if g is not None and meds["direct"] else "n/a"
        ratios[label] = (g, best, meds, higher, s)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {r_best} | {r_dir} |")
    return "\n".join(lines), ratios


def auto_notes(ratios: dict, errors: list[str]) -> list[str]:
    notes = []
    for label, (g, best, meds, higher, vals) in ratios.items():
        if g is None or best[0] is None or higher is None:
            continue
        gv, bv = vals["gproxy"], vals[best[1]]
        worse = (g < best[0] * 0.9) if higher else (g > best[0] * 1.1)
        # Only call it a shortfall when the repetitions do not overlap; else it is within the noise.
        separated = (max(gv) < min(bv)) if higher else (min(gv) > max(bv))
        if worse:
            notes.append(f"gproxy trails the best other proxy ({LABEL[best[1]]}) on *{label.strip()}*: "
                         f"{fmt(g)} vs {fmt(best[0])} ({g / best[0]:.2f}x)"
                         + (", every repetition worse" if separated else ", but the repetitions overlap (noise)")
                         + ".")
    for e in errors:
        notes.append(f"ERROR: {e}")
    return notes


# ----------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 reps, 1 s iperf3, 2 s wrk, idle test on gproxy+haproxy only")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, quick 2)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="proxy threads (default: cores)")
    ap.add_argument("--idle", type=int, default=9500, help="idle connections for the RSS test (default 9500; "
                    "10,000 needs >20,000 fds in the proxy and the hard RLIMIT_NOFILE here is 20,000)")
    ap.add_argument("--only", help="comma list of tests: iperf,wrk,idle,pgbench")
    ap.add_argument("--pg-clients", type=int, default=16, help="pgbench clients (default 16, 2 threads)")
    ap.add_argument("--no-write", action="store_true", help="do not append to perf/RESULTS.md")
    ap.add_argument("--json", help="also dump every raw run here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    a = ap.parse_args()
    PG_CLIENTS[0] = a.pg_clients
    reps = a.reps or (2 if a.quick else 3)
    isecs = 1 if a.quick else 3
    wsecs = 2 if a.quick else 4
    psecs = 3 if a.quick else 5
    only = set((a.only or "iperf,wrk,idle,pgbench").split(","))
    limit = _lab.raise_nofile()
    if a.idle * 2 + 300 > limit:
        print(f"note: --idle {a.idle} needs {a.idle * 2 + 300} fds in the proxy; RLIMIT_NOFILE is {limit}",
              file=sys.stderr)
    info = _lab.machine_info()
    cmd = "python3 perf/bench.py " + " ".join(sys.argv[1:])
    t_start = time.monotonic()
    lab = _lab.Lab(prefix="gproxy-bench-", keep=a.keep)
    data: dict = {}
    errors: list[str] = []
    try:
        iperf_port, http_port = _lab.free_port(), _lab.free_port()
        iperf_srv = lab.start("iperf3-server", [_lab.need("iperf3"), "-s", "-p", str(iperf_port), "-B", "127.0.0.1"])
        _lab.wait_port(iperf_port, proc=iperf_srv)
        start_nginx(lab, http_port)
        pg = None
        if "pgbench" in only:
            missing = _pg.available()
            if missing:
                errors.append(f"pgbench test skipped: {missing}")
                only.discard("pgbench")
            else:
                pg = _pg.LocalPostgres(lab)
        ports = {"direct": {"iperf": iperf_port, "http": http_port, "pg": pg.port if pg else 0}}
        procs = {"direct": None}
        for k in PROXIES:
            pi, ph, pp = _lab.free_port(), _lab.free_port(), _lab.free_port()
            listens = [{"name": "bulk", "port": pi, "servers": [("iperf", iperf_port, None)]},
                       {"name": "web", "port": ph, "servers": [("nginx", http_port, None)]}]
            if pg:
                listens.append({"name": "pg", "port": pp, "servers": [("pg", pg.port, None)]})
            procs[k] = start_proxy(lab, k, listens, a.threads, "main")
            ports[k] = {"iperf": pi, "http": ph, "pg": pp}
        tests = []
        if "iperf" in only:
            for streams in (1, 4):
                for rev in (False, True):
                    tests.append((f"iperf-P{streams}{'-R' if rev else ''}",
                                  lambda p, s=streams, r=rev: iperf(p["iperf"], isecs, s, r)))
        if "wrk" in only:
            tests.append(("wrk-close", lambda p: wrk(p["http"], wsecs, 16, True)))
            tests.append(("wrk-ka", lambda p: wrk(p["http"], wsecs, 32, False)))
        runs = itertools.count()  # a fresh pgbench log folder per run
        if "pgbench" in only:
            tests.append(("pgbench", lambda p: _pg.pgbench(lab, p["pg"], psecs, a.pg_clients, 2, f"r{next(runs)}")))
        dead: set[str] = set()
        for rep in range(reps):
            for name, fn in tests:
                for t in TARGETS:
                    if t in dead:
                        continue
                    proc = procs[t]
                    r = with_cpu(proc, lambda: fn(ports[t]))
                    r["rep"] = rep
                    data.setdefault(name, {}).setdefault(t, []).append(r)
                    msg = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in r.items())
                    print(f"[{time.monotonic() - t_start:6.1f}s] rep {rep + 1}/{reps} {name:10s} {t:20s} {msg}",
                          file=sys.stderr, flush=True)
                    if "error" in r:
                        errors.append(f"{name} {t} rep {rep + 1}: {r['error']}")
                        if proc is not None and proc.poll() is not None:
                            dead.add(t)
                            errors.append(f"{t} died (exit {proc.returncode}); repro: {proc.repro}; log tail: "
                                          f"{lab.log(proc.lab_name)[-500:]!r}")
                    time.sleep(0.2)
        if "pgbench" in only:
            # One more run per proxy, counting its system calls (kept apart: the tracepoint costs a
            # little on every call, so these runs give no TPS or CPU figure).
            for t in PROXIES:
                if t in dead:
                    continue
                r = with_syscall_count(procs[t], lambda: _pg.pgbench(lab, ports[t]["pg"], psecs, a.pg_clients, 2,
                                                                     f"c{next(runs)}"))
                data.setdefault("pgbench-count", {}).setdefault(t, []).append(r)
                print(f"[{time.monotonic() - t_start:6.1f}s] syscall count pgbench {t:20s} "
                      f"{r.get('syscalls')} calls / {r.get('requests')} tx {r.get('error', '')}", file=sys.stderr, flush=True)
                if "error" in r:
                    errors.append(f"pgbench syscall count {t}: {r['error']}")
        for k in PROXIES:
            lab.stop(procs[k])
        if "idle" in only:
            # nginx left out: its memory is spread over worker processes (RSS of a tree double-counts shared pages)
            kinds = ["gproxy", "haproxy"] if a.quick else [k for k in PROXIES if k != "nginx"]
            for rep in range(1 if a.quick else min(reps, 2)):
                for k in kinds:
                    r = idle_rss(lab, k, a.idle, a.threads, rep)
                    data.setdefault("idle", {}).setdefault(k, []).append(r)
                    msg = " ".join(f"{kk}={fmt(v) if isinstance(v, float) else v}" for kk, v in r.items())
                    print(f"[{time.monotonic() - t_start:6.1f}s] idle {k:20s} {msg}", file=sys.stderr, flush=True)
                    if "error" in r:
                        errors.append(f"idle {k}: {r['error']}")
    finally:
        lab.close()
    elapsed = time.monotonic() - t_start
    rows = build_rows(data, a.idle)
    table, ratios = render(rows)
    info_end = _lab.machine_info()
    notes = auto_notes(ratios, errors)
    header = (f"date {info['date']}, nproc {info['nproc']}, kernel {info['kernel']}, loadavg at start "
              f"{' '.join(info['loadavg'])} / end {' '.join(info_end['loadavg'])}, {reps} reps interleaved, "
              f"iperf3 {isecs} s, wrk {wsecs} s, pgbench {psecs} s, proxy threads {a.threads}, wall {elapsed:.0f} s")
    calls = syscall_table(data)
    if calls:
        table += "\n\nSystem calls per pgbench transaction, by call (the counting pass):\n\n" + calls
    print("\n" + header + "\ncommand: " + cmd + "\n\n" + table)
    if notes:
        print("\n" + "\n".join("- " + n for n in notes))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "cmd": cmd, "data": data}, f, indent=1)
    if not a.no_write:
        path = os.path.join(_lab.HERE, "RESULTS.md")
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write("# gproxy perf lab results\n\nAppended by `perf/bench.py` and by hand for "
                        "`perf/maxconn_stress.py`. Medians of interleaved repetitions; ±% is half the "
                        "min-max range over the repetitions.\n")
            f.write(f"\n## bench {info['date']}{' (quick)' if a.quick else ''}\n\n")
            f.write(f"- {header}\n- command: `{cmd}`\n- haproxy {haproxy_version()}, gproxy `{_lab.gproxy_bin()}` "
                    f"at {git_rev()}\n\n")
            f.write(table + "\n")
            if notes:
                f.write("\nAutomatic notes:\n\n" + "\n".join("- " + n for n in notes) + "\n")
        print(f"\nappended to {path}")
    return 1 if errors else 0


def syscall_table(data: dict) -> str:
    """Rows: system calls; columns: proxies; cells: calls per transaction in the counting pass."""
    runs = {t: [r for r in data.get("pgbench-count", {}).get(t, []) if "by_call" in r and r.get("requests")]
            for t in PROXIES}
    runs = {t: v[0] for t, v in runs.items() if v}
    if not runs:
        return ""
    cols = [t for t in PROXIES if t in runs]
    lines = ["| call | " + " | ".join(LABEL[t] for t in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for c in COUNTED_CALLS + ["all"]:
        vals = [(runs[t]["syscalls"] if c == "all" else runs[t]["by_call"].get(c, 0)) / runs[t]["requests"] for t in cols]
        if c != "all" and not any(v >= 0.005 for v in vals):
            continue
        lines.append(f"| {c} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    return "\n".join(lines)


def haproxy_version() -> str:
    try:
        out = subprocess.run([_lab.need("haproxy"), "-v"], capture_output=True, text=True).stdout
        return out.split("\n")[0].split("version")[1].split()[0]
    except Exception:  # noqa: BLE001
        return "?"


def git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", _lab.REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
