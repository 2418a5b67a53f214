#!/usr/bin/env python3
"""Configuration loading time and memory: `gproxy -c` against `haproxy -c` on large generated configs.

Configs (written to a scratch directory, removed afterwards):
  servers-10k   one backend with 10,000 `server` lines
  servers-40k   one backend with 40,000 `server` lines
  keywords-50M    ~50 MB of keyword lines in one listen section
  proxies-50M     ~50 MB of small listen sections (~84k), each with 8 servers and a few keywords

Each proxy runs `-c -q -f FILE` `--reps` times; the script prints the median wall time, the median CPU
time (user + system: the box is shared, so wall time includes waiting for a core) and the peak RSS
(GNU time's %M, the proxy alone). Nothing listens: `-c` only reads and validates.

Usage: python3 perf/config_load.py [--reps 3] [--only servers-10k,...] [--keep]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _lab import gproxy_bin, need  # noqa: E402

TIME = "/usr/bin/time"  # GNU time (apt-get install -y time): max RSS of the proxy alone

HEAD = """global
    maxconn 1000

defaults
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server 1m

"""


def servers_config(n: int) -> str:
    lines = [HEAD, "listen big\n    bind 127.0.0.1:15000\n    balance roundrobin\n",
             "    default-server inter 3s fall 3 rise 2\n"]
    for i in range(n):
        a, b = divmod(i, 250)
        lines.append(f"    server srv{i} 10.{a // 250}.{a % 250}.{b + 1}:5432 maxconn 100 weight 1\n")
    return "".join(lines)


def directives_config(target_bytes: int) -> str:
    parts = [HEAD]
    size = len(HEAD)
    i = 0
    while size < target_bytes:
        block = (f"listen p{i}\n"
                 f"    bind 127.0.0.1:{10000 + i % 50000}\n"
                 f"    balance leastconn\n"
                 f"    option redispatch\n"
                 f"    retries 3\n"
                 f"    timeout queue 5s\n"
                 f"    default-server inter 2s fall 3 rise 2 maxconn 50\n")
        for s in range(8):
            block += f"    server s{s} 10.{i % 250}.{s}.{(i // 250) % 250 + 1}:{5432 + s} weight {s + 1}\n"
        parts.append(block + "\n")
        size += len(block) + 1
        i += 1
    return "".join(parts)


def keywords_config(target_bytes: int) -> str:
    """One listen section and ~50 MB of keyword lines that build nothing new (settings overwritten)."""
    parts = [HEAD, "listen one\n    bind 127.0.0.1:15000\n    server s1 10.0.0.1:5432\n"]
    block = ("    timeout connect 5s\n    timeout server 30s\n    balance roundrobin\n    retries 3\n"
             "    option redispatch\n    # a comment line, as long as a typical one in a tuned config\n")
    parts.append(block * (target_bytes // len(block) + 1))
    return "".join(parts)


CONFIGS = {
    "servers-10k": lambda: servers_config(10_000),
    "servers-40k": lambda: servers_config(40_000),
    "keywords-50M": lambda: keywords_config(50 * 1024 * 1024),
    "proxies-50M": lambda: directives_config(50 * 1024 * 1024),
}


def run_once(argv: list[str]) -> tuple[float, float, int, int, str]:
    """(wall seconds, CPU seconds, max RSS KiB, exit status, last stderr line) of one run.

    Measured by /usr/bin/time around the proxy: this script's own memory (the generated config) would
    otherwise count in the child's ru_maxrss, which includes the forked image before exec."""
    report = tempfile.NamedTemporaryFile(prefix="config-load-time-", delete=False)
    report.close()
    try:
        p = subprocess.run([TIME, "-o", report.name, "-f", "%e %U %S %M"] + argv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with open(report.name) as f:
            fields = f.read().split()[-4:]
    finally:
        os.unlink(report.name)
    wall, user, system, rss = float(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    tail = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return wall, user + system, rss, p.returncode, tail[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(CONFIGS))
    ap.add_argument("--keep", action="store_true", help="keep the generated configs")
    args = ap.parse_args()
    gproxy = gproxy_bin()
    haproxy = need("haproxy")
    scratch = tempfile.mkdtemp(prefix="gproxy-config-load-")
    try:
        print(f"gproxy: {gproxy}\nhaproxy: {haproxy}\n")
        print(f"{'config':16} {'MB':>6}  {'proxy':8} {'wall s':>8} {'CPU s':>8} {'max RSS MB':>11}  exit")
        for name in args.only.split(","):
            path = os.path.join(scratch, name + ".cfg")
            with open(path, "w") as f:
                f.write(CONFIGS[name]())
            mb = os.path.getsize(path) / 1e6
            for proxy, binary in (("gproxy", gproxy), ("haproxy", haproxy)):
                runs = [run_once([binary, "-c", "-q", "-f", path]) for _ in range(args.reps)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                rss = max(r[2] for r in runs) / 1024
                status = runs[-1][3]
                note = "" if status == 0 else f"  ({runs[-1][4][:80]})"
                print(f"{name:16} {mb:6.1f}  {proxy:8} {wall:8.2f} {cpu:8.2f} {rss:11.1f}  {status}{note}", flush=True)
    finally:
        if args.keep:
            print(f"configs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
