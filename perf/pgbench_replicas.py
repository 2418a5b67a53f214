#!/usr/bin/env python3
"""Database round trips through the read port: `pgbench -S` against the real replicas, direct vs
gproxy vs HAProxy, same cluster, same run.

    python3 perf/pgbench_replicas.py [--reps 3] [--secs 10] [--no-connect] [--syscalls] [--write]

Brings up a 3-node Patroni cluster with the integration harness (`Tests/Integration/
patroni_cluster.py`: PostgreSQL 15, raft DCS, 127.0.0.1, pg_hba `host all all 127.0.0.1/32 trust`),
runs `pgbench -i -s 5` on the primary, waits until both replicas have replayed the primary's WAL,
starts gproxy, HAProxy and HAProxy with `option splice-request`/`splice-response` (all with the seed
haproxy.cfg on private ports, `Tests/Integration/proxy.py`), waits for their read listens to show
the two replicas UP and the primary DOWN (stats CSV), then interleaves, per repetition (order
rotated each rep):

  direct        pgbench -c 8 -j 2 against one replica's port (alternating between the two replicas)
  direct-split  two pgbench -c 4 -j 1 at once, one per replica (what round-robin does; TPS summed)
  gproxy        pgbench -c 8 -j 2 through gproxy's read port
  haproxy       ... through HAProxy's read port
  haproxy-splice  ... through HAProxy's read port with splice-request + splice-response

each `pgbench -S -n -T secs` as `postgres` over TCP to 127.0.0.1; scenario `keepalive` (one
connection per client), then scenario `connect` (`-C`, a new connection per transaction). Reports
the median TPS, average latency and the proxy's CPU seconds (utime+stime of its pid from
/proc/<pid>/stat) per 1,000 transactions, and ratios to `direct`.

`--syscalls` afterwards runs one extra keep-alive pgbench per proxy under `strace -c -f -p <pid>`
(strace slows the proxy: only the counts per transaction mean something). `--write` appends the
table to perf/RESULTS.md. Everything started here is stopped by its pid, also on failure/^C/SIGTERM.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "Tests", "Integration"))
sys.path.insert(0, HERE)

import patroni_cluster as pc  # noqa: E402
import proxy as px  # noqa: E402
import _lab  # noqa: E402

PGBENCH = os.environ.get("PGBENCH", "/usr/bin/pgbench")
PROXIES = ["gproxy", "haproxy", "haproxy-splice"]
VARIANTS = ["direct", "direct-split"] + PROXIES
LABEL = {"direct": "direct, one replica", "direct-split": "direct, both replicas (4+4 clients)",
         "gproxy": "gproxy read port", "haproxy": "haproxy read port",
         "haproxy-splice": "haproxy read port, splice-req+resp"}

_CHILDREN: list[subprocess.Popen] = []


def log(msg: str) -> None:
    pc.log(msg)


# --------------------------------------------------------------------------- helpers

def psql(port: int, sql: str) -> str:
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                          "-XAtqc", sql], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"psql :{port} {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def wait_replicas_caught_up(cluster: pc.PatroniCluster, timeout: float = 120) -> None:
    leader = cluster.leader()
    target = psql(cluster.pg_port(leader), "SELECT pg_current_wal_lsn()")
    deadline = time.time() + timeout
    for name in cluster.replicas():
        port = cluster.pg_port(name)
        while True:
            behind = psql(port, f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
            if float(behind) <= 0:
                n = psql(port, "SELECT count(*) FROM pgbench_accounts")
                log(f"{name} replayed up to {target} ({n} accounts)")
                break
            if time.time() > deadline:
                raise TimeoutError(f"{name} still {behind} bytes behind {target}")
            time.sleep(0.2)


def stats_status(stats_port: int) -> dict[tuple[str, str], str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/;csv", timeout=3) as r:
        text = r.read().decode()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return {(row[0], row[1]): row[17] for row in csv.reader(io.StringIO("\n".join(lines))) if len(row) > 17}


def settle(cluster: pc.PatroniCluster, kind: str, stats_port: int, timeout: float = 40, write: bool = False) -> None:
    """Waits for the read listen to show the replicas UP and the leader DOWN; `write`: also the write
    listen the leader UP and the replicas DOWN."""
    leader = cluster.leader()
    exp = {("opengauss_balance", n.name): ("DOWN" if n.name == leader else "UP") for n in cluster.nodes}
    if write:
        exp.update({("opengauss", n.name): ("UP" if n.name == leader else "DOWN") for n in cluster.nodes})
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            last = stats_status(stats_port)
            if all(last.get(k) == v for k, v in exp.items()):
                log(f"{kind}: read listen settled (replicas UP, {leader} DOWN)"
                    + (f", write listen too ({leader} UP, replicas DOWN)" if write else ""))
                return
        except Exception as e:  # noqa: BLE001
            last = repr(e)
        time.sleep(0.25)
    raise TimeoutError(f"{kind}: {'listens' if write else 'read listen'} did not settle: {last}")


def splice_config(text: str) -> str:
    """The seed with `option splice-request` + `option splice-response` in the read listen."""
    out, section = [], None
    for ln in text.split("\n"):
        if ln.startswith("listen "):
            section = ln.split()[1]
        out.append(ln)
        if section == "opengauss_balance" and ln.strip().startswith("balance "):
            out += ["    option splice-request", "    option splice-response"]
    return "\n".join(out)


TPS_RE = re.compile(r"^tps = ([\d.]+)", re.M)
LAT_RE = re.compile(r"^latency average = ([\d.]+) ms", re.M)
TX_RE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
FAIL_RE = re.compile(r"^number of failed transactions: (\d+)", re.M)


def pgbench_argv(port: int, clients: int, threads: int, secs: int, connect: bool) -> list[str]:
    argv = [PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-S", "-n",
            "-c", str(clients), "-j", str(threads), "-T", str(secs)]
    if connect:
        argv.append("-C")
    return argv + ["postgres"]


def seeded_cluster(scale: int, extra_sql: str = "") -> tuple[pc.PatroniCluster, str, list[str], int]:
    """A 3-node cluster with `pgbench -i -s scale` (and `extra_sql`) on the leader, replicas caught
    up: (cluster, leader, replicas, leader's port). Stops the cluster if seeding fails."""
    cluster = pc.PatroniCluster(3).start()
    try:
        leader = cluster.leader()
        replicas = cluster.replicas()
        assert len(replicas) == 2, replicas
        lport = cluster.pg_port(leader)
        log(f"pgbench -i -s {scale} on {leader} (:{lport})")
        subprocess.run([PGBENCH, "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(lport),
                        "-U", "postgres", "postgres"], check=True, capture_output=True, timeout=300)
        if extra_sql:
            psql(lport, extra_sql)
        wait_replicas_caught_up(cluster)
        return cluster, leader, replicas, lport
    except BaseException:
        cluster.stop()
        raise


def start_tracked(argv: list[str], **kw) -> subprocess.Popen:
    """A child whose output is collected by `collect`; killed by the cleanup handlers meanwhile."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True, **kw)
    _CHILDREN.append(p)
    return p


def collect(p: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Its stdout and stderr; SIGKILLed by pid if it outlives `timeout`, and untracked."""
    try:
        return p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        _CHILDREN.remove(p)


def box_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole box from /proc/stat (every process, also other jobs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def proc_ut_st(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _lab.CLK_TCK, int(fields[12]) / _lab.CLK_TCK


def pm_cpu(pids: list[int]) -> float:
    """utime+stime+cutime+cstime of postmasters: their exited backends (reaped by the postmaster)
    land in cutime/cstime, so the delta around a run is the CPU of that run's backends."""
    t = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += sum(int(x) for x in fields[11:15])
    return t / _lab.CLK_TCK


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_pgbench(ports: list[int], clients: int, threads: int, secs: int, connect: bool,
                cpu_pid: int | None = None, pm_pids: list[int] | None = None) -> dict:
    """One pgbench per port, all at once (clients/threads are per pgbench). Sums TPS/transactions;
    latency is the transaction-weighted mean. cpu_pid: the proxy whose CPU is measured around it."""
    ut0 = proc_ut_st(cpu_pid) if cpu_pid else None
    box0 = box_cpu()
    pm0 = pm_cpu(pm_pids) if pm_pids else None
    ch0 = children_cpu()
    t0 = time.time()
    procs = []
    for p in ports:
        procs.append(start_tracked(pgbench_argv(p, clients, threads, secs, connect)))
    outs = []
    for pr in procs:
        o, e = collect(pr, secs + 60)
        if pr.returncode != 0 or not TPS_RE.search(o):
            raise RuntimeError(f"pgbench rc={pr.returncode}:\n{o}\n{e}")
        outs.append(o)
    wall = time.time() - t0
    ch1 = children_cpu()
    time.sleep(0.3)  # the postmasters reap the backends that pgbench's disconnect ended
    pm1 = pm_cpu(pm_pids) if pm_pids else None
    box1 = box_cpu()
    ut1 = proc_ut_st(cpu_pid) if cpu_pid else None
    cpu = (sum(ut1) - sum(ut0)) if cpu_pid else None
    sys_share = ((ut1[1] - ut0[1]) / cpu) if cpu else None
    box_busy = (box1[0] - box0[0]) / _lab.CLK_TCK
    box_idle = 1 - (box1[0] - box0[0]) / max(1, box1[1] - box0[1])
    tps = sum(float(TPS_RE.search(o).group(1)) for o in outs)
    txs = [int(TX_RE.search(o).group(1)) for o in outs]
    lats = [float(LAT_RE.search(o).group(1)) for o in outs]
    fails = sum(int(m.group(1)) for o in outs if (m := FAIL_RE.search(o)))
    tx = sum(txs)
    lat = sum(l * t for l, t in zip(lats, txs)) / tx if tx else None
    return {"tps": tps, "tx": tx, "lat_ms": lat, "failed": fails, "wall": wall,
            "cpu_s": cpu, "cpu_per_1k": (cpu / tx * 1000) if (cpu is not None and tx) else None,
            "pgbench_per_1k": (ch1 - ch0) / tx * 1000 if tx else None,
            "pg_per_1k": (pm1 - pm0) / tx * 1000 if (pm_pids and tx) else None,
            "sys_share": sys_share, "box_per_1k": box_busy / tx * 1000 if tx else None, "box_idle": box_idle}


# --------------------------------------------------------------------------- measurement

def measure(cluster, proxies, replica_ports, pm_pids, args, scenario: str) -> dict[str, list[dict]]:
    connect = scenario == "connect"
    res: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        order = VARIANTS[rep % len(VARIANTS):] + VARIANTS[:rep % len(VARIANTS)]
        for v in order:
            if v == "direct":
                r = run_pgbench([replica_ports[rep % 2]], 8, 2, args.secs, connect, pm_pids=pm_pids)
                r["target"] = cluster.name_for_pg_port(replica_ports[rep % 2])
            elif v == "direct-split":
                r = run_pgbench(replica_ports, 4, 1, args.secs, connect, pm_pids=pm_pids)
            else:
                p = proxies[v]
                if not p.alive():
                    raise RuntimeError(f"{v} died:\n{p.log_tail()}")
                r = run_pgbench([p.ports["read"]], 8, 2, args.secs, connect, cpu_pid=p.proc.pid, pm_pids=pm_pids)
            res[v].append(r)
            cpu = f"{r['cpu_per_1k']:.3f} s/1k tx" if r["cpu_per_1k"] is not None else "-"
            log(f"[{scenario} rep {rep + 1}/{args.reps}] {v:15s} tps {r['tps']:9.1f}  lat {r['lat_ms']:.3f} ms  "
                f"cpu {cpu} (sys {fmt(r['sys_share'], 2)})  pgbench {fmt(r['pgbench_per_1k'], 3)} pg {fmt(r['pg_per_1k'], 3)}  box {r['box_per_1k']:.3f} s/1k tx idle {r['box_idle']:.0%}  failed {r['failed']}  load {open('/proc/loadavg').read().split()[0]}")
    return res


def syscall_profile(proxies, args) -> dict[str, dict]:
    """Syscalls per transaction of each proxy under strace -c -f (keep-alive pgbench)."""
    out = {}
    for v in PROXIES:
        p = proxies[v]
        path = os.path.join(p.dir, "strace.txt")
        st = subprocess.Popen(["strace", "-c", "-f", "-o", path, "-p", str(p.proc.pid)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        _CHILDREN.append(st)
        time.sleep(1.0)
        try:
            r = run_pgbench([p.ports["read"]], 8, 2, args.secs, False)
        finally:
            os.kill(st.pid, signal.SIGINT)
            try:
                st.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(st.pid, signal.SIGKILL)
                st.wait()
            _CHILDREN.remove(st)
        calls: dict[str, int] = {}
        with open(path) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    name = parts[-1]
                    try:
                        # columns: %time seconds usecs/call calls [errors] syscall
                        calls[name] = int(parts[3])
                    except ValueError:
                        continue
        tx = r["tx"] or 1
        per = {k: c / tx for k, c in sorted(calls.items(), key=lambda kv: -kv[1]) if c / tx >= 0.01}
        out[v] = {"tx": r["tx"], "tps_under_strace": r["tps"], "per_tx": per, "total_per_tx": sum(calls.values()) / tx}
        log(f"{v}: {out[v]['total_per_tx']:.2f} syscalls/tx: "
            + ", ".join(f"{k} {c:.2f}" for k, c in list(per.items())[:8]))
    return out


def perf_profile(proxies, args, kind: str = "gproxy", top: int = 30) -> str:
    """`perf record -e cpu-clock -g -p <pid>` of one proxy during one extra keep-alive pgbench; returns the
    top symbols by self time (kernel and user) and the share per DSO."""
    p = proxies[kind]
    data = os.path.join(p.dir, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "-p", str(p.proc.pid),
                            "-o", data], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    _CHILDREN.append(rec)
    time.sleep(1.0)
    try:
        r = run_pgbench([p.ports["read"]], 8, 2, args.secs, False)
    finally:
        os.kill(rec.pid, signal.SIGINT)
        try:
            rec.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(rec.pid, signal.SIGKILL)
            rec.wait()
        _CHILDREN.remove(rec)
    out = [f"{kind}: {r['tps']:.0f} tps under perf record"]
    for sort in ("dso", "sym"):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", "--no-children",
                              "--sort", sort], capture_output=True, text=True, timeout=120).stdout
        lines = [ln for ln in rep.splitlines() if re.match(r"^\s+[0-9]", ln)][:top if sort == "sym" else 8]
        out.append(f"-- by {sort}:\n" + "\n".join(lines))
    text = "\n".join(out)
    print(text, file=sys.stderr, flush=True)
    return text


# --------------------------------------------------------------------------- report

def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:,.{nd}f}"


def spread(xs, nd=1):
    xs = [x for x in xs if x is not None]
    return f"{fmt(min(xs), nd)}–{fmt(max(xs), nd)}" if xs else "n/a"


def table(results: dict[str, dict[str, list[dict]]], reps: int) -> str:
    rows = ["| scenario | target | TPS median (min–max) | TPS vs direct | avg latency ms | proxy CPU s / 1k tx (min–max) | proxy CPU in kernel | pgbench CPU s / 1k tx | replica backends CPU s / 1k tx | proxy+pgbench+backends s / 1k tx | whole-box CPU s / 1k tx (incl. other jobs) | box idle |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for scen, res in results.items():
        base = _lab.median([r["tps"] for r in res["direct"]])
        for v in VARIANTS:
            rs = res[v]
            tps = _lab.median([r["tps"] for r in rs])
            lat = _lab.median([r["lat_ms"] for r in rs])
            cpu = _lab.median([r["cpu_per_1k"] for r in rs])
            sysf = _lab.median([r["sys_share"] for r in rs])
            box = _lab.median([r["box_per_1k"] for r in rs])
            idle = _lab.median([r["box_idle"] for r in rs])
            pgb = _lab.median([r["pgbench_per_1k"] for r in rs])
            pgc = _lab.median([r["pg_per_1k"] for r in rs])
            acc = _lab.median([r["pgbench_per_1k"] + r["pg_per_1k"] + (r["cpu_per_1k"] or 0) for r in rs])
            ratio = f"{tps / base:.2f}×" if base else "n/a"
            cpu_s = "–" if v.startswith("direct") else f"{fmt(cpu, 3)} ({spread([r['cpu_per_1k'] for r in rs], 3)})"
            sc = {"keepalive": "`-S`, 8 clients", "connect": "`-S -C`, 8 clients"}[scen]
            rows.append(f"| {sc} | {LABEL[v]} | {fmt(tps)} ({spread([r['tps'] for r in rs])}) | {ratio} | "
                        f"{fmt(lat, 3)} | {cpu_s} | {'–' if sysf is None else f'{sysf:.0%}'} | {fmt(pgb, 3)} | {fmt(pgc, 3)} | {fmt(acc, 3)} | {fmt(box, 3)} | {idle:.0%} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--no-connect", action="store_true", help="skip the -C scenario")
    ap.add_argument("--syscalls", action="store_true", help="strace -c -f each proxy during one extra run")
    ap.add_argument("--profile", action="store_true", help="perf record gproxy during one extra run")
    ap.add_argument("--write", action="store_true", help="append the table to perf/RESULTS.md")
    args = ap.parse_args()

    pc.install_signal_handlers()
    info = _lab.machine_info()
    gbin = px.find_gproxy()
    if not gbin:
        sys.exit("gproxy binary not found: swift build -c release --static-swift-stdlib --product gproxy (or GPROXY_BIN)")
    hv = subprocess.run([px.find_haproxy() or "haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    cluster = None
    proxies: dict[str, px.Proxy] = {}
    try:
        cluster, leader, replicas, lport = seeded_cluster(args.scale)
        replica_ports = [cluster.pg_port(n) for n in replicas]
        pm_pids = [cluster.node(n).postmaster_pid() for n in replicas]

        for kind in PROXIES:
            w, r, st = pc.free_ports(3)
            ports = {"write": w, "read": r, "stats": st}
            text = pc.seed_config_text(cluster, ports)
            if kind == "haproxy-splice":
                text = splice_config(text)
            p = px.Proxy("haproxy" if kind.startswith("haproxy") else "gproxy", text, ports)
            proxies[kind] = p
            p.start()
        for kind, p in proxies.items():
            settle(cluster, kind, p.ports["stats"])

        # warm-up: the page cache of both replicas, every proxy path once
        for port in replica_ports:
            run_pgbench([port], 8, 2, 3, False)
        for p in proxies.values():
            run_pgbench([p.ports["read"]], 8, 2, 2, False)

        results = {"keepalive": measure(cluster, proxies, replica_ports, pm_pids, args, "keepalive")}
        if not args.no_connect:
            results["connect"] = measure(cluster, proxies, replica_ports, pm_pids, args, "connect")
        sysc = syscall_profile(proxies, args) if args.syscalls else None
        prof = perf_profile(proxies, args) if args.profile else None
        if leader != cluster.leader() or sorted(replicas) != cluster.replicas():
            raise RuntimeError(f"cluster roles changed during the run: {cluster.members()}")
        info_end = _lab.machine_info()
    finally:
        for p in list(_CHILDREN):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        for p in proxies.values():
            p.cleanup()
        if cluster:
            cluster.stop()

    tbl = table(results, args.reps)
    cmd = "python3 perf/pgbench_replicas.py" + "".join(f" {a}" for a in sys.argv[1:])
    sha = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    pgv = subprocess.run([PGBENCH, "--version"], capture_output=True, text=True).stdout.strip()
    head = (f"```\n{cmd}\nnproc = {info['nproc']}   load average at start {' '.join(info['loadavg'])}, "
            f"at end {' '.join(info_end['loadavg'])}\ngproxy {gbin} built at {sha}; {hv}; {pgv}\n"
            f"3-node Patroni cluster (1 primary, 2 streaming replicas), pgbench -i -s {args.scale}; "
            f"each run pgbench -S -n -c 8 -j 2 -T {args.secs} (direct-split: 2 × -c 4 -j 1), "
            f"{args.reps} interleaved reps, medians\n```")
    sc_txt = ""
    if sysc:
        sc_rows = ["| proxy | syscalls / tx (strace -c -f) | top syscalls / tx |", "|---|---|---|"]
        for v, s in sysc.items():
            sc_rows.append(f"| {LABEL[v]} | {s['total_per_tx']:.2f} | "
                           + ", ".join(f"{k} {c:.2f}" for k, c in list(s["per_tx"].items())[:6]) + " |")
        sc_txt = "\n\n" + "\n".join(sc_rows)
    print("\n" + head + "\n\n" + tbl + sc_txt + "\n")
    raw = {s: {v: [{k: (round(x, 4) if isinstance(x, float) else x) for k, x in r.items()} for r in rs]
               for v, rs in res.items()} for s, res in results.items()}
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", f"pgbench-{time.strftime('%Y%m%d-%H%M%S')}.txt"), "w") as f:
        f.write(head + "\n\n" + tbl + sc_txt + "\n\n" + repr(raw) + ("\n" + repr(sysc) if sysc else "")
                + ("\n\n" + prof if prof else "") + "\n")
    if args.write:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d')} — pgbench -S through the read port to the real replicas: "
                    f"direct vs gproxy vs HAProxy\n\n{head}\n\n{tbl}{sc_txt}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
