#!/usr/bin/env python3
"""Connections lost across reloads: gproxy -sf against haproxy -sf and haproxy -sf -x.

Clients connect back to back (each sends a line and reads it back through the proxy to an echo
server) while the proxy is reloaded again and again, the way `systemctl reload` does it: a new
process started with `-sf <old pid>`. Every connection that is refused, reset or answered wrongly
counts as lost.

- haproxy -sf: the new process binds beside the old one (SO_REUSEPORT); connections the kernel had
  queued on the old process's sockets when it closes them are reset.
- haproxy -sf -x: the old process exposes its sockets (`stats socket ... expose-fd listeners`) and
  the new one takes them over that socket: nothing is lost, at the price of extra configuration.
- gproxy -sf: takes the old process's sockets by itself (no configuration).

    python3 perf/reload_drops.py [--reloads 20] [--clients 4]

Everything binds 127.0.0.1; every process is stopped by its pid.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import _lab


def run(kind: str, lab: _lab.Lab, echo_port: int, reloads: int, clients: int, interval: float) -> dict:
    port = _lab.free_port()
    sock_path = lab.path(f"{kind}.sock")
    extra = [f"stats socket {sock_path} mode 600 level admin expose-fd listeners"] if kind == "haproxy-x" else []
    cfg = lab.write(f"{kind}.cfg", _lab.proxy_cfg(
        [{"name": "rw", "port": port, "servers": [("echo", echo_port, None)]}],
        nbthread=2, maxconn=4000, extra_global=extra))
    binary = "gproxy" if kind == "gproxy" else "haproxy"
    _lab.check_cfg(binary, cfg)
    current = lab.start(f"{kind}-0", _lab.proxy_argv(binary, cfg))
    _lab.wait_port(port, proc=current)
    stop = threading.Event()
    counts = {"ok": 0, "lost": 0}
    lock = threading.Lock()
    threads = [threading.Thread(target=_lab.echo_round_trips, args=(port, stop, counts, lock)) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        for r in range(1, reloads + 1):
            time.sleep(interval)
            argv = _lab.proxy_argv(binary, cfg) + ["-sf", str(current.pid)]
            if kind == "haproxy-x":
                argv += ["-x", sock_path]
            nxt = lab.start(f"{kind}-{r}", argv)
            # The old process finishes its sessions (short ones here) and exits.
            deadline = time.monotonic() + 10
            while current.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            lab.stop(current)
            current = nxt
        time.sleep(interval)
    finally:
        stop.set()
        for t in threads:
            t.join()
        lab.stop(current)
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--interval", type=float, default=0.3, help="seconds between reloads")
    ap.add_argument("--kinds", default="gproxy,haproxy,haproxy-x")
    args = ap.parse_args()
    _lab.raise_nofile()
    lab = _lab.Lab()
    echo_port = _lab.free_port()
    echo = lab.start("echo", [sys.executable, os.path.join(_lab.HERE, "echo_server.py"), "--ports", str(echo_port)])
    _lab.wait_port(echo_port, proc=echo)
    print(f"{args.reloads} reloads, {args.clients} clients connecting back to back, 2 cores")
    print(f"{'proxy':<12} {'served':>8} {'lost':>6}")
    for kind in args.kinds.split(","):
        c = run(kind, lab, echo_port, args.reloads, args.clients, args.interval)
        print(f"{kind:<12} {c['ok']:>8} {c['lost']:>6}", flush=True)
    lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
