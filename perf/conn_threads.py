#!/usr/bin/env python3
"""Connection churn vs worker threads: gproxy and haproxy (copy) with 1 and 2 threads, interleaved.

    python3 perf/conn_threads.py [--reps 4] [--secs 3]

wrk -t1 -c16 -H 'Connection: close' through each proxy to nginx; prints median conn/s, p50/p99 and
proxy CPU per connection and in % of one core. Used to check whether gproxy's conn/s gap is CPU cost
or wake-up/latency (per-worker SO_REUSEPORT listeners vs haproxy's shared listener).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--secs", type=int, default=3)
    a = ap.parse_args()
    _lab.raise_nofile()
    lab = _lab.Lab(prefix="gproxy-connthreads-")
    variants = [("gproxy", 1), ("gproxy", 2), ("haproxy", 1), ("haproxy", 2)]
    runs = {v: [] for v in variants}
    try:
        nport = _lab.free_port()
        bench.start_nginx(lab, nport)
        procs, ports = {}, {}
        for kind, th in variants:
            ports[(kind, th)] = _lab.free_port()
            procs[(kind, th)] = bench.start_proxy(lab, kind, [{"name": "web", "port": ports[(kind, th)],
                                                               "servers": [("nginx", nport, None)]}], th, f"t{th}")
        for rep in range(a.reps):
            for v in variants:
                r = bench.with_cpu(procs[v], lambda: bench.wrk(ports[v], a.secs, 16, True))
                runs[v].append(r)
                print(f"rep {rep + 1} {v[0]:8s} threads={v[1]} rps={r.get('rps')} p50={r.get('p50_ms')} "
                      f"p99={r.get('p99_ms')} cpu={r.get('cpu_s')}", file=sys.stderr, flush=True)
                time.sleep(0.2)
    finally:
        lab.close()
    print("| proxy | threads | conn/s | p50 ms | p99 ms | CPU us/conn | CPU % of a core |")
    print("|---|---|---|---|---|---|---|")
    for v in variants:
        ok = [r for r in runs[v] if "error" not in r]
        med = lambda f: _lab.median([f(r) for r in ok])  # noqa: E731
        print(f"| {v[0]} | {v[1]} | {med(lambda r: r['rps']):,.0f} | {med(lambda r: r['p50_ms']):.2f} | "
              f"{med(lambda r: r['p99_ms']):.2f} | {med(lambda r: r['cpu_s'] / r['requests'] * 1e6):.0f} | "
              f"{med(lambda r: r['cpu_s'] / r['secs'] * 100):.0f} |")


if __name__ == "__main__":
    main()
