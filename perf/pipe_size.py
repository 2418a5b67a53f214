#!/usr/bin/env python3
"""Relay pipe size (`tune.pipesize`) against proxy CPU per GB: iperf3 bulk through gproxy with each
size, interleaved, medians. Tells whether a pipe larger than the kernel's 64 KiB pays off.

    python3 perf/pipe_size.py [--sizes 65536,262144,1048576] [--reps 3] [--secs 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import _lab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="65536,262144,1048576")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=2)
    ap.add_argument("--streams", default="1,4")
    args = ap.parse_args()
    iperf = _lab.need("iperf3")
    lab = _lab.Lab()
    sport = _lab.free_port()
    server = lab.start("iperf-server", [iperf, "-s", "-B", "127.0.0.1", "-p", str(sport)])
    _lab.wait_port(sport, proc=server)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[tuple[int, int, bool], list[tuple[float, float]]] = {}
    procs = {}
    ports = {}
    for size in sizes:
        port = _lab.free_port()
        cfg = lab.write(f"p{size}.cfg", _lab.proxy_cfg([{"name": "bulk", "port": port, "servers": [("s", sport, None)]}],
                                                       nbthread=2, maxconn=4000, extra_global=[f"tune.pipesize {size}"]))
        procs[size] = lab.start(f"gproxy-{size}", _lab.proxy_argv("gproxy", cfg))
        ports[size] = port
        _lab.wait_port(port, proc=procs[size])
    for rep in range(args.reps):
        for streams in [int(s) for s in args.streams.split(",")]:
            for reverse in (False, True):
                for size in sizes:
                    pid = procs[size].pid
                    before = _lab.cpu_seconds(pid)
                    argv = [iperf, "-c", "127.0.0.1", "-p", str(ports[size]), "-t", str(args.secs), "-P", str(streams), "-J"]
                    if reverse:
                        argv.append("-R")
                    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                    cpu = _lab.cpu_seconds(pid) - before
                    end = json.loads(out)["end"]
                    recv = end["sum_received"]
                    gb = recv["bytes"] / 1e9
                    results.setdefault((streams, size, reverse), []).append((recv["bits_per_second"] / 1e9, cpu / gb))
    print(f"{'streams':>7} {'dir':>4} {'pipe':>8} {'Gbit/s':>8} {'CPU s/GB':>9}")
    for (streams, size, reverse), runs in sorted(results.items()):
        print(f"{streams:>7} {'-R' if reverse else 'c->s':>4} {size // 1024:>6}Ki {_lab.median([r[0] for r in runs]):>8.2f} "
              f"{_lab.median([r[1] for r in runs]):>9.3f}")
    lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
