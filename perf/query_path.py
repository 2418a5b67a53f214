#!/usr/bin/env python3
"""Where a proxied query's time goes: the on-CPU and off-CPU view of a database round trip.

`pgbench -S` against a throw-away local PostgreSQL (perf/_pg.py), directly and through gproxy,
haproxy (copy) and nginx stream, first with ONE client (one query in flight: every query pays the
proxy's full path, wake-ups included), then with many (`--clients`, default 1,16). Per query:

  * latency p50/p99 and what the proxy adds to the direct p50 (µs);
  * the proxy's CPU (utime+stime of all its threads/processes, µs) - the on-CPU part;
  * the proxy's system calls (raw_syscalls:sys_enter), its context switches (sched:sched_switch
    away from its threads: the times it slept or was preempted) and the wake-ups it issues
    (sched:sched_wakeup in its context: the peers it wakes), counted by `perf stat` in a pass of
    its own (tracepoints cost a little per event, so that pass gives no timing);
  * run-queue wait: how long the proxy's threads sat runnable but not running after a wake-up
    (`perf sched record` + `perf sched latency`, in one more pass), per query - the off-CPU time
    the proxy spends waiting for a core rather than for the network.

Interleaved reps, medians. Appends a table to perf/RESULTS.md unless --no-write.

    python3 perf/query_path.py [--secs 5] [--reps 3] [--clients 1,16] [--threads N] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402
import _pg  # noqa: E402
import bench  # noqa: E402

KINDS = ["gproxy", "haproxy", "nginx"]
TARGETS = ["direct"] + KINDS
COUNT_EVENTS = ["raw_syscalls:sys_enter", "sched:sched_switch", "sched:sched_wakeup"]


def proxy_tids(pid: int) -> set[int]:
    """Every thread of the proxy and of its child processes (nginx workers)."""
    tids = set()
    for p in [pid] + _lab.children(pid):
        try:
            tids.update(int(t) for t in os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    return tids


def counted(proc, fn) -> dict:
    """fn's result plus the COUNT_EVENTS in the proxy's threads while it ran."""
    pids = ",".join(str(p) for p in [proc.pid] + _lab.children(proc.pid))
    out = tempfile.NamedTemporaryFile(prefix="qp-stat-", suffix=".txt", delete=False).name
    ps = subprocess.Popen([_lab.need("perf"), "stat", "-x,", "-o", out, "-e", ",".join(COUNT_EVENTS), "-p", pids],
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
    for ev in COUNT_EVENTS:
        m = re.search(rf"^(\d+),,{re.escape(ev)},", text, re.M)
        if not m:
            r["error"] = f"perf stat gave no {ev}: {text[-200:]!r}"
            return r
        r[ev] = int(m.group(1))
    return r


def run_queue_wait(proc, fn) -> dict:
    """fn's result plus the proxy threads' total run-queue wait (ms) and switches while it ran,
    from `perf sched latency` (which reports, per task, the switches and the average delay between
    being woken and running)."""
    data = tempfile.NamedTemporaryFile(prefix="qp-sched-", suffix=".data", delete=False).name
    rec = subprocess.Popen([_lab.need("perf"), "sched", "record", "-o", data, "--", "sleep", "3600"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    time.sleep(0.5)
    tids = proxy_tids(proc.pid)
    try:
        r = fn()
    finally:
        # perf stops recording when its workload (the sleep) ends: stop the sleep, not perf.
        for c in _lab.children(rec.pid):
            os.kill(c, signal.SIGTERM)
        rec.wait(30)
    # -p: one row per thread (by default rows of the same name are merged, haproxy:(2)).
    lat = subprocess.run([_lab.need("perf"), "sched", "latency", "-p", "-i", data], capture_output=True, text=True)
    os.unlink(data)
    wait_ms, switches = 0.0, 0
    for ln in lat.stdout.splitlines():
        m = re.match(r"\s*(\S.*?):(\d+)\s*\|.*?\|\s*(\d+)\s*\|\s*avg:\s*([\d.]+) ms", ln)
        if m and int(m.group(2)) in tids:
            switches += int(m.group(3))
            wait_ms += int(m.group(3)) * float(m.group(4))
    r["rq_wait_ms"], r["rq_switches"] = wait_ms, switches
    return r


def per_query(runs: list[dict], key: str, scale: float) -> float | None:
    vals = [r[key] * scale / r["requests"] for r in runs if key in r and r.get("requests")]
    return _lab.median(vals) if vals else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clients", default="1,16", help="comma list of pgbench client counts (default 1,16)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="proxy threads (default: cores)")
    ap.add_argument("--no-write", action="store_true", help="do not append to perf/RESULTS.md")
    a = ap.parse_args()
    missing = _pg.available()
    if missing:
        sys.exit(f"query_path needs a local PostgreSQL: {missing}")
    clients = [int(c) for c in a.clients.split(",")]
    info = _lab.machine_info()
    lab = _lab.Lab(prefix="gproxy-qpath-")
    data: dict = {}
    errors: list[str] = []
    runs = iter(range(1_000_000))
    try:
        pg = _pg.LocalPostgres(lab)
        ports, procs = {"direct": pg.port}, {"direct": None}
        for k in KINDS:
            port = _lab.free_port()
            procs[k] = bench.start_proxy(lab, k, [{"name": "pg", "port": port, "servers": [("pg", pg.port, None)]}],
                                         a.threads, "qp")
            ports[k] = port

        def bench_run(t, c, tag):
            return _pg.pgbench(lab, ports[t], a.secs, c, min(c, 2), f"{tag}{next(runs)}")

        for c in clients:
            for rep in range(a.reps):
                for t in TARGETS:
                    r = bench.with_cpu(procs[t], lambda: bench_run(t, c, "t"))
                    data.setdefault((c, "timed", t), []).append(r)
                    print(f"c{c} rep {rep + 1} {t:8s} tps={r.get('tps')} p50={r.get('p50_ms')} cpu={r.get('cpu_s')}"
                          f" {r.get('error', '')}", file=sys.stderr, flush=True)
                    if "error" in r:
                        errors.append(f"c{c} {t}: {r['error']}")
            for t in KINDS:
                # The proxy's wake-ups and preemptions (from /proc) of this same run: the count of
                # context switches must add up with them.
                r = counted(procs[t], lambda: bench.with_cpu(procs[t], lambda: bench_run(t, c, "n")))
                data.setdefault((c, "count", t), []).append(r)
                r2 = run_queue_wait(procs[t], lambda: bench_run(t, c, "s"))
                data.setdefault((c, "sched", t), []).append(r2)
                print(f"c{c} counted {t:8s} {r} rq {r2.get('rq_wait_ms')} ms / {r2.get('rq_switches')}",
                      file=sys.stderr, flush=True)
                for x in (r, r2):
                    if "error" in x:
                        errors.append(f"c{c} {t} counting: {x['error']}")
    finally:
        lab.close()

    out = [f"\n## Query path, {info['date']} (`python3 perf/query_path.py {' '.join(sys.argv[1:])}`)\n",
           f"- nproc {info['nproc']}, kernel {info['kernel']}, proxy threads {a.threads}, pgbench -S {a.secs} s, "
           f"{a.reps} reps interleaved (medians), haproxy {bench.haproxy_version()}, gproxy at {bench.git_rev()}\n"]
    for c in clients:
        def med(t, key, kind="timed", scale=1.0, per=False):
            rs = data.get((c, kind, t), [])
            if per:
                return per_query(rs, key, scale)
            vals = [r[key] * scale for r in rs if r.get(key) is not None and "error" not in r]
            return _lab.median(vals) if vals else None

        direct_p50 = med("direct", "p50_ms", scale=1000)
        rows = [
            ("TPS", lambda t: med(t, "tps"), "{:,.0f}"),
            ("latency p50 µs", lambda t: med(t, "p50_ms", scale=1000), "{:.0f}"),
            ("latency p99 µs", lambda t: med(t, "p99_ms", scale=1000), "{:.0f}"),
            ("p50 added to direct, µs", lambda t: (med(t, "p50_ms", scale=1000) - direct_p50)
             if t != "direct" and direct_p50 and med(t, "p50_ms") else None, "{:.0f}"),
            ("proxy CPU per query, µs (on-CPU)", lambda t: med(t, "cpu_s", per=True, scale=1e6), "{:.1f}"),
            ("proxy system calls per query", lambda t: med(t, "raw_syscalls:sys_enter", "count", per=True), "{:.2f}"),
            ("proxy context switches per query", lambda t: med(t, "sched:sched_switch", "count", per=True), "{:.2f}"),
            ("  of which it slept (wake-ups of the proxy)", lambda t: med(t, "wakeups", "count", per=True), "{:.2f}"),
            ("  of which it was preempted", lambda t: med(t, "preempted", "count", per=True), "{:.2f}"),
            ("peers the proxy wakes per query", lambda t: med(t, "sched:sched_wakeup", "count", per=True), "{:.2f}"),
            ("proxy run-queue wait per query, µs (off-CPU, waiting for a core)",
             lambda t: med(t, "rq_wait_ms", "sched", per=True, scale=1000), "{:.1f}"),
        ]
        out.append(f"\n**{c} client{'s' if c > 1 else ''}** (`pgbench -S -c{c} -j{min(c, 2)}`)\n\n")
        out.append("| per query | " + " | ".join(TARGETS) + " |\n|---|" + "---|" * len(TARGETS) + "\n")
        for name, fn, f in rows:
            cells = []
            for t in TARGETS:
                v = fn(t) if t != "direct" or name in ("TPS", "latency p50 µs", "latency p99 µs") else None
                cells.append(f.format(v) if v is not None else "–")
            out.append(f"| {name} | " + " | ".join(cells) + " |\n")
    if errors:
        out.append("\nErrors:\n" + "".join(f"- {e}\n" for e in errors))
    text = "".join(out)
    print(text)
    if not a.no_write:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"), "a") as f:
            f.write(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
