#!/usr/bin/env python3
"""Asyncio echo servers on 127.0.0.1 (one process, several ports), for the perf lab.

Echoes every byte back; half-closes when the peer half-closes. Keeps per-port counters
(accepted, current, max concurrent) and writes them as JSON to --stats every 100 ms and at exit,
so a harness can wait for "N connections established" and check a server's maxconn was honoured.

    echo_server.py --ports 47001,47002 --stats /tmp/x.json
"""
import argparse
import asyncio
import json
import os
import resource
import signal


class Counts:
    def __init__(self, ports):
        self.by_port = {p: {"accepted": 0, "current": 0, "max": 0, "bytes": 0} for p in ports}


class Echo(asyncio.Protocol):
    def __init__(self, c):
        self.c = c

    def connection_made(self, transport):
        self.t = transport
        self.c["accepted"] += 1
        self.c["current"] += 1
        if self.c["current"] > self.c["max"]:
            self.c["max"] = self.c["current"]

    def data_received(self, data):
        self.c["bytes"] += len(data)
        self.t.write(data)

    def eof_received(self):
        return False  # close once our writes are flushed

    def connection_lost(self, exc):
        self.c["current"] -= 1


async def main(a):
    ports = [int(p) for p in a.ports.split(",")]
    counts = Counts(ports)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda p=p: Echo(counts.by_port[p]), "127.0.0.1", p, backlog=4096,
                                        reuse_address=True) for p in ports]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def dump():
        if a.stats:
            tmp = a.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump({str(k): v for k, v in counts.by_port.items()}, f)
            os.replace(tmp, a.stats)

    while not stop.is_set():
        dump()
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    dump()
    for s in servers:
        s.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--stats")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        pass
    asyncio.run(main(args))
