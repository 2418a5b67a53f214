"""A throw-away PostgreSQL 15 for the perf lab, and pgbench runs against it.

The server runs as the `postgres` user (initdb refuses root) from a data directory inside the lab's
scratch directory, on a kernel-chosen port of 127.0.0.1, fsync off (the lab measures proxies, not
disks). It is stopped by its pid with the rest of the lab.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time

import _lab

PG_BIN = "/usr/lib/postgresql/15/bin"


def available() -> str | None:
    """None when a local PostgreSQL can run here, else what is missing."""
    if not os.access(f"{PG_BIN}/postgres", os.X_OK):
        return "postgresql-15 not installed (apt-get install -y postgresql-15)"
    if not shutil.which("pgbench") and not os.access(f"{PG_BIN}/pgbench", os.X_OK):
        return "pgbench not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None


def _as_postgres(argv: list[str]) -> list[str]:
    return argv if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"] + argv


def pgbench_bin() -> str:
    return f"{PG_BIN}/pgbench" if os.access(f"{PG_BIN}/pgbench", os.X_OK) else shutil.which("pgbench")


class LocalPostgres:
    def __init__(self, lab: _lab.Lab, scale: int = 10, max_connections: int = 200):
        self.lab = lab
        self.port = _lab.free_port()
        self.dir = lab.path("pgdata")
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chmod(lab.dir, 0o755)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.dir, "-U", "postgres", "-A", "trust",
                                     "--no-sync"]), check=True, capture_output=True)
        self.proc = lab.start("postgres", _as_postgres([
            f"{PG_BIN}/postgres", "-D", self.dir, "-p", str(self.port), "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
            "-c", f"max_connections={max_connections}", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "shared_buffers=256MB", "-c", "full_page_writes=off", "-c", "log_min_messages=warning"]))
        _lab.wait_port(self.port, timeout=30, proc=self.proc)
        deadline = time.time() + 30
        while subprocess.run([f"{PG_BIN}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("postgres did not become ready")
            time.sleep(0.2)
        subprocess.run([pgbench_bin(), "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "postgres"], check=True, capture_output=True)

    @property
    def pid(self) -> int:
        return self.proc.pid


def pgbench(lab: _lab.Lab, port: int, secs: int, clients: int, jobs: int, tag: str, connect: bool = False) -> dict:
    """`pgbench -S` (select-only) through `port`: TPS and per-transaction latency percentiles from the
    transaction log (`-l`, microseconds)."""
    d = lab.path(f"pgb-{tag}")
    os.makedirs(d, exist_ok=True)
    argv = [pgbench_bin(), "-S", "-n", "-c", str(clients), "-j", str(jobs), "-T", str(secs), "-l",
            "--log-prefix", os.path.join(d, "tx"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    if connect:
        argv.append("-C")
    argv.append("postgres")
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 60)
    except subprocess.TimeoutExpired:
        return {"error": "pgbench timed out"}
    out = r.stdout + r.stderr
    tx, lat = None, []
    for path in glob.glob(os.path.join(d, "tx*")):
        with open(path) as f:
            for ln in f:
                p = ln.split()
                if len(p) >= 3 and p[2].isdigit():
                    lat.append(int(p[2]) / 1000.0)
        os.unlink(path)
    for ln in out.splitlines():
        if ln.startswith("number of transactions actually processed:"):
            tx = int(ln.split(":")[1].split("/")[0])
    tps = [ln for ln in out.splitlines() if ln.startswith("tps = ")]
    if r.returncode != 0 or tx is None or not tps:
        return {"error": f"pgbench rc={r.returncode}: {out[-300:]}"}
    failed = [ln for ln in out.splitlines() if ln.startswith("number of failed transactions")]
    res = {"tps": float(tps[0].split()[2]), "requests": tx, "secs": float(secs),
           "p50_ms": _lab.percentile(lat, 50), "p99_ms": _lab.percentile(lat, 99),
           "avg_ms": sum(lat) / len(lat) if lat else None}
    if failed and not failed[0].split(":")[1].strip().startswith("0 "):
        res["error"] = failed[0]
    return res
