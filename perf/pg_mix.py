#!/usr/bin/env python3
"""A database workload of writes and reads at once on the real Patroni cluster: writes through the write
port, reads through the read port, per-query latency percentiles, direct vs gproxy vs HAProxy, same run.

    python3 perf/pg_mix.py [--reps 3] [--secs 10] [--scale 5] [--write]

The cluster, the proxies and their settling come from perf/pgbench_replicas.py (imported, not copied):
a 3-node Patroni cluster of the integration harness (`Tests/Integration/patroni_cluster.py`: PostgreSQL
15, raft DCS, 127.0.0.1, fsync off, synchronous_commit on, asynchronous streaming replicas),
`pgbench -i -s 5` on the primary plus a table `mix_writes`, a wait until both replicas have replayed
the primary's WAL, then gproxy, gproxy-patroni (the seed plus `patroni primary`/`patroni replica`) and
HAProxy, each with the seed haproxy.cfg on private ports (`opengauss` = write port, `opengauss_balance`
= read port), and a wait until the stats CSV of each shows the leader UP only in the write listen and
the replicas UP only in the read listen.

Each run is two pgbench at the same time for --secs, as `postgres` over TCP to 127.0.0.1:

  writer  pgbench -n -f <INSERT INTO mix_writes(k, v) VALUES (random k, now())> -c 4 -j 1  → write target
  reader  pgbench -n -S -c 8 -j 1                                                          → read target

  direct          write target = the leader's port, read target = one replica's port (alternating per rep)
  gproxy, gproxy-patroni, haproxy   their write port and their read port (round-robin over both replicas)

Variants are interleaved per repetition (order rotated each rep). Per run: TPS of writer and reader,
p50/p99 of the per-transaction latency of each (from `pgbench -l --log-prefix`: the third column, µs),
failed transactions and aborted clients (both must be 0), and the proxy's CPU (utime+stime of its pid
from /proc/<pid>/stat) per 1,000 transactions (writes + reads). Reported: medians over the reps with
min–max, ratios to direct and to haproxy. `--write` appends the section to perf/RESULTS.md.
Everything started here is stopped by its pid, also on failure/^C/SIGTERM.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pgbench_replicas as pr  # noqa: E402  (puts Tests/Integration on sys.path)
from pgbench_replicas import pc, px, _lab, PGBENCH, REPO, log, fmt, spread  # noqa: E402

PROXIES = ["gproxy", "gproxy-patroni", "haproxy"]
VARIANTS = ["direct"] + PROXIES
LABEL = {"direct": "direct (leader / one replica)", "gproxy": "gproxy", "gproxy-patroni": "gproxy-patroni",
         "haproxy": "haproxy"}
WRITERS, READERS = 4, 8
WRITE_SCRIPT = "\\set k random(1, 100000)\nINSERT INTO mix_writes(k, v) VALUES (:k, now());\n"
ABORTED_RE = re.compile(r"client \d+ aborted")


def pgbench_argv(port: int, clients: int, secs: int, prefix: str, script: str | None) -> list[str]:
    """script None: the built-in select-only (-S)."""
    argv = [PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-c", str(clients), "-j", "1",
            "-T", str(secs), "-l", f"--log-prefix={prefix}"]
    argv += ["-S"] if script is None else ["-f", script]
    return argv + ["postgres"]


def latencies_us(prefix: str) -> tuple[list[int], int]:
    """Per-transaction latencies (third column of pgbench's log, µs) of every log file of one pgbench,
    and the number of log lines whose latency is not a number (failed/skipped)."""
    lat, other = [], 0
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) < 3:
                    continue
                try:
                    lat.append(int(parts[2]))
                except ValueError:
                    other += 1
        os.unlink(path)
    return lat, other


def summarize(out: str, err: str, rc: int, prefix: str) -> dict:
    if not pr.TPS_RE.search(out):
        raise RuntimeError(f"pgbench rc={rc}, no summary:\n{out}\n{err}")
    lat, other = latencies_us(prefix)
    fails = pr.FAIL_RE.search(out)
    return {"tps": float(pr.TPS_RE.search(out).group(1)), "tx": int(pr.TX_RE.search(out).group(1)),
            # a failed transaction is both in the summary and a non-numeric time in the log
            "failed": max(int(fails.group(1)) if fails else 0, other), "aborted": len(ABORTED_RE.findall(err)),
            "rc": rc, "logged": len(lat),
            "p50_ms": _lab.percentile(lat, 50) / 1000 if lat else None,
            "p99_ms": _lab.percentile(lat, 99) / 1000 if lat else None}


def run_mix(write_port: int, read_port: int, secs: int, work: str, tag: str, script: str,
            cpu_pid: int | None = None) -> dict:
    """Writer and reader pgbench at once; cpu_pid: the proxy whose CPU is measured around both."""
    ut0 = pr.proc_ut_st(cpu_pid) if cpu_pid else None
    jobs = {}
    for role, port, clients, scr in (("w", write_port, WRITERS, script), ("r", read_port, READERS, None)):
        prefix = os.path.join(work, f"{tag}-{role}")
        jobs[role] = (pr.start_tracked(pgbench_argv(port, clients, secs, prefix, scr), cwd=work), prefix)
    res = {}
    for role, (p, prefix) in jobs.items():
        o, e = pr.collect(p, secs + 60)
        res[role] = summarize(o, e, p.returncode, prefix)
        if res[role]["logged"] != res[role]["tx"]:
            log(f"{tag}-{role}: {res[role]['logged']} latencies logged for {res[role]['tx']} transactions")
    ut1 = pr.proc_ut_st(cpu_pid) if cpu_pid else None
    tx = res["w"]["tx"] + res["r"]["tx"]
    cpu = (sum(ut1) - sum(ut0)) if cpu_pid else None
    return {"w": res["w"], "r": res["r"], "cpu_s": cpu,
            "cpu_per_1k": cpu / tx * 1000 if (cpu is not None and tx) else None}


def targets(v: str, proxies: dict, leader_port: int, replica_ports: list[int], rep: int) -> tuple[int, int, int | None]:
    """(write port, read port, proxy pid or None)."""
    if v == "direct":
        return leader_port, replica_ports[rep % 2], None
    p = proxies[v]
    if not p.alive():
        raise RuntimeError(f"{v} died:\n{p.log_tail()}")
    return p.ports["write"], p.ports["read"], p.proc.pid


def measure(cluster, proxies, leader_port, replica_ports, args, work, script) -> dict[str, list[dict]]:
    res: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        order = VARIANTS[rep % len(VARIANTS):] + VARIANTS[:rep % len(VARIANTS)]
        for v in order:
            w, r, pid = targets(v, proxies, leader_port, replica_ports, rep)
            m = run_mix(w, r, args.secs, work, f"{v}-{rep}", script, cpu_pid=pid)
            if v == "direct":
                m["read_target"] = cluster.name_for_pg_port(r)
            res[v].append(m)
            log(f"[rep {rep + 1}/{args.reps}] {v:14s} write {m['w']['tps']:7.1f} tps p50 {fmt(m['w']['p50_ms'], 3)} "
                f"p99 {fmt(m['w']['p99_ms'], 3)} ms | read {m['r']['tps']:7.1f} tps p50 {fmt(m['r']['p50_ms'], 3)} "
                f"p99 {fmt(m['r']['p99_ms'], 3)} ms | failed {m['w']['failed']}/{m['r']['failed']} "
                f"aborted {m['w']['aborted']}/{m['r']['aborted']} | cpu {fmt(m['cpu_per_1k'], 3)} s/1k tx"
                f" | load {open('/proc/loadavg').read().split()[0]}")
    return res


# --------------------------------------------------------------------------- report

def col(rs: list[dict], role: str | None, key: str) -> list:
    return [(r[role][key] if role else r[key]) for r in rs]


def med(rs, role, key):
    return _lab.median(col(rs, role, key))


def table(res: dict[str, list[dict]]) -> str:
    rows = ["| target | write TPS (min–max) | write p50 ms | write p99 ms (min–max) | read TPS (min–max) | "
            "read p50 ms | read p99 ms (min–max) | failed w/r, aborted clients w/r | proxy CPU s / 1k tx (min–max) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        rs = res[v]
        fails = f"{sum(col(rs, 'w', 'failed'))}/{sum(col(rs, 'r', 'failed'))}, " \
                f"{sum(col(rs, 'w', 'aborted'))}/{sum(col(rs, 'r', 'aborted'))}"
        cpu = "–" if v == "direct" else f"{fmt(med(rs, None, 'cpu_per_1k'), 3)} ({spread(col(rs, None, 'cpu_per_1k'), 3)})"
        rows.append(f"| {LABEL[v]} | {fmt(med(rs, 'w', 'tps'))} ({spread(col(rs, 'w', 'tps'))}) | "
                    f"{fmt(med(rs, 'w', 'p50_ms'), 3)} | {fmt(med(rs, 'w', 'p99_ms'), 3)} ({spread(col(rs, 'w', 'p99_ms'), 3)}) | "
                    f"{fmt(med(rs, 'r', 'tps'))} ({spread(col(rs, 'r', 'tps'))}) | {fmt(med(rs, 'r', 'p50_ms'), 3)} | "
                    f"{fmt(med(rs, 'r', 'p99_ms'), 3)} ({spread(col(rs, 'r', 'p99_ms'), 3)}) | {fails} | {cpu} |")
    rows += ["", "| ratio of medians | write TPS | write p50 | write p99 | read TPS | read p50 | read p99 | proxy CPU / 1k tx |",
             "|---|---|---|---|---|---|---|---|"]
    keys = [("w", "tps"), ("w", "p50_ms"), ("w", "p99_ms"), ("r", "tps"), ("r", "p50_ms"), ("r", "p99_ms"),
            (None, "cpu_per_1k")]
    pairs = [(v, "direct") for v in PROXIES] + [(v, "haproxy") for v in PROXIES if v != "haproxy"]
    for a, b in pairs:
        cells = []
        for role, key in keys:
            x, y = med(res[a], role, key), med(res[b], role, key)
            cells.append(f"{x / y:.2f}×" if (x is not None and y) else "–")
        rows.append(f"| {a} / {b} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def kill_children() -> None:
    for p in list(pr._CHILDREN):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="append the section to perf/RESULTS.md")
    args = ap.parse_args()

    pc.install_signal_handlers()
    pc.EXTRA_CLEANUPS.append(kill_children)  # SIGTERM/SIGHUP: the pgbench too, not only cluster and proxies
    info = _lab.machine_info()
    gbin = px.find_gproxy()
    if not gbin:
        sys.exit("gproxy binary not found: swift build -c release --static-swift-stdlib --product gproxy (or GPROXY_BIN)")
    hv = subprocess.run([px.find_haproxy() or "haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    work = tempfile.mkdtemp(prefix="gproxy-pgmix-")
    script = os.path.join(work, "write.sql")
    with open(script, "w") as f:
        f.write(WRITE_SCRIPT)
    cluster = None
    proxies: dict[str, px.Proxy] = {}
    try:
        cluster, leader, replicas, lport = pr.seeded_cluster(
            args.scale, "CREATE TABLE mix_writes (id bigserial PRIMARY KEY, k int NOT NULL, v timestamptz NOT NULL)")
        replica_ports = [cluster.pg_port(n) for n in replicas]

        for kind in PROXIES:
            w, r, st = pc.free_ports(3)
            ports = {"write": w, "read": r, "stats": st}
            p = px.Proxy(kind, pc.seed_config_text(cluster, ports, patroni=kind == "gproxy-patroni"), ports)
            proxies[kind] = p
            p.start()
        for kind, p in proxies.items():
            pr.settle(cluster, kind, p.ports["stats"], write=True)

        # warm-up: the page cache of both replicas, every path once
        for i, (v, rep) in enumerate([("direct", 0), ("direct", 1)] + [(v, 0) for v in PROXIES]):
            w, r, _ = targets(v, proxies, lport, replica_ports, rep)
            run_mix(w, r, 2, work, f"warm-{i}", script)

        res = measure(cluster, proxies, lport, replica_ports, args, work, script)
        if leader != cluster.leader() or sorted(replicas) != cluster.replicas():
            raise RuntimeError(f"cluster roles changed during the run: {cluster.members()}")
        rows = pr.psql(lport, "SELECT count(*) FROM mix_writes")
        info_end = _lab.machine_info()
    finally:
        kill_children()
        for p in proxies.values():
            p.cleanup()
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    tbl = table(res)
    cmd = "python3 perf/pg_mix.py" + "".join(f" {a}" for a in sys.argv[1:])
    sha = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    pgv = subprocess.run([PGBENCH, "--version"], capture_output=True, text=True).stdout.strip()
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(gbin)))
    direct_reads = ", ".join(r.get("read_target", "?") for r in res["direct"])
    head = (f"```\n{cmd}\n{info['date']}; nproc = {info['nproc']}, kernel {info['kernel']}; load average at start "
            f"{' '.join(info['loadavg'])}, at end {' '.join(info_end['loadavg'])}\n"
            f"perf/pg_mix.py at {sha}; gproxy {gbin} (built {built}); {hv}; {pgv}\n"
            f"3-node Patroni cluster (1 primary, 2 async streaming replicas, fsync off), pgbench -i -s {args.scale}; "
            f"each run, for {args.secs} s at once: writer pgbench -n -c {WRITERS} -j 1 -f "
            f"'INSERT INTO mix_writes(k, v) VALUES (random(1,100000), now())' against the write target, "
            f"reader pgbench -n -S -c {READERS} -j 1 against the read target; {args.reps} interleaved reps, "
            f"medians; latency percentiles from pgbench -l (per transaction); direct reads went to {direct_reads}; "
            f"{rows} rows in mix_writes at the end\n```")
    print("\n" + head + "\n\n" + tbl + "\n")
    raw = {v: [{k: ({kk: (round(x, 4) if isinstance(x, float) else x) for kk, x in val.items()}
                    if isinstance(val, dict) else (round(val, 4) if isinstance(val, float) else val))
                for k, val in r.items()} for r in rs] for v, rs in res.items()}
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", f"pg_mix-{time.strftime('%Y%m%d-%H%M%S')}.txt"), "w") as f:
        f.write(head + "\n\n" + tbl + "\n\n" + repr(raw) + "\n")
    if args.write:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d')} — a write + read mix on the real Patroni cluster: writes through "
                    f"the write port, reads through the read port, per-query p50/p99, direct vs gproxy vs HAProxy\n\n"
                    f"{head}\n\n{tbl}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
