"""Counts the health checks a proxy sends to Patroni's REST API.

A tiny TCP forwarder, one listening port per cluster node, each relaying to that node's real REST
API port. The proxy under test is configured with `check port <forwarder port>`; everything else
(the harness's own `/cluster` polls, Patroni members talking to each other) keeps using the real
ports, so the forwarder's log holds exactly the proxy's checks. A port may delay its answers
(`LISTEN:TARGET:SECONDS`): test_faults.py's slow API. Every accepted connection is one
check (HAProxy and gproxy open one connection per check and send one request); the request line is
logged with a timestamp:

    <start unix time> <listen port> <method> <uri> <end unix time> <status> <role> <state> <timeline>

Run as a separate process (`python3 check_counter.py LOG LISTEN:TARGET ...`) so the harness's
threads (GIL) never delay a check; it prints `ready` once every port is bound.

Why this and not Patroni's DEBUG log or the proxies' stats: Patroni logs API requests only at DEBUG
(which also makes Patroni itself much noisier and slower during elections, skewing the very timings
measured), and HAProxy's stats have no per-server check counter. The forwarder costs one loopback
hop (well under a millisecond) and sees the same bytes Patroni sees. One difference: if a Patroni
API were down, the proxy would see accept-then-close instead of a refused connection (the events
of test_real_cluster.py never stop Patroni's API, only PostgreSQL; test_faults.py's own proxies check
Patroni directly, except through the slow forwarder of its slow-API test).
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import time


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bytearray | None = None) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if keep is not None and len(keep) < 4096:
                keep += data
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass


def describe(resp: bytes) -> str:
    """`<status> <role> <state> <timeline>` of a Patroni reply ('-' when absent)."""
    head, _, body = resp.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0].split(b" ")
    status = first[1].decode(errors="replace") if len(first) > 1 else "-"
    role = state = tl = "-"
    try:
        doc = json.loads(body.decode(errors="replace")) if body else {}
        role, state = str(doc.get("role", "-")), str(doc.get("state", "-"))
        tl = str(doc.get("timeline", "-"))
    except ValueError:
        pass
    return f"{status} {role} {state} {tl}".replace("\n", " ")


def make_handler(listen: int, target: int, log, delay: float = 0.0):
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        t = time.time()
        first = b""
        resp = bytearray()
        method = uri = "-"
        try:
            try:
                first = await asyncio.wait_for(cr.read(4096), timeout=10)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                first = b""
            line = first.split(b"\r\n", 1)[0].decode(errors="replace").split(" ")
            method = line[0] if line and line[0] else "-"
            uri = line[1] if len(line) > 1 else "-"
            if not first:
                return
            if delay > 0:   # a slow API (test_faults.py): the answer starts `delay` s after the request
                await asyncio.sleep(delay)
            try:
                ur, uw = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                return
            uw.write(first)
            await asyncio.gather(pipe(cr, uw), pipe(ur, cw, resp))
            uw.close()
        finally:
            cw.close()
            # one line per check: start, port, request, end, Patroni's answer
            log.write(f"{t:.3f} {listen} {method} {uri} {time.time():.3f} {describe(bytes(resp))}\n")
            log.flush()
    return handle


async def main(argv: list[str]) -> None:
    log = open(argv[0], "a", buffering=1)
    servers = []
    for spec in argv[1:]:
        # LISTEN:TARGET[:DELAY seconds]
        parts = spec.split(":")
        listen, target = int(parts[0]), int(parts[1])
        delay = float(parts[2]) if len(parts) > 2 else 0.0
        servers.append(await asyncio.start_server(make_handler(listen, target, log, delay), "127.0.0.1", listen,
                                                  reuse_address=True, backlog=128))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# --------------------------------------------------------------------------- harness side

_LIVE: list["CheckCounter"] = []


class CheckCounter:
    """Starts the forwarder process for {listen port: target port}; reads its log back. `delays`
    {listen port: seconds} holds back each answer of that port (a slow Patroni API)."""

    def __init__(self, mapping: dict[int, int], log_path: str, delays: dict[int, float] | None = None):
        self.mapping, self.log_path = dict(mapping), log_path
        self.delays = dict(delays or {})
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "CheckCounter":
        args = [sys.executable, os.path.abspath(__file__), self.log_path,
                *(f"{a}:{b}:{self.delays[a]}" if a in self.delays else f"{a}:{b}"
                  for a, b in self.mapping.items())]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, text=True)
        _LIVE.append(self)
        deadline = time.time() + timeout
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "ready" or not line:
                break
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"check counter did not start: {line!r}")
        return self

    def stop(self) -> None:
        from proxy import terminate
        terminate(self.proc)
        if self in _LIVE:
            _LIVE.remove(self)

    def requests(self, t0: float = 0.0, t1: float = float("inf")) -> list[tuple[float, int, str, str]]:
        """(time, listen port, method, uri) of every check that arrived in [t0, t1)."""
        out = []
        try:
            with open(self.log_path) as f:
                for ln in f:
                    parts = ln.split()
                    if len(parts) < 4:
                        continue
                    t = float(parts[0])
                    if t0 <= t < t1:
                        out.append((t, int(parts[1]), parts[2], parts[3]))
        except OSError:
            pass
        return out

    def rate(self, t0: float, t1: float) -> float | None:
        """Checks per second over [t0, t1)."""
        if t1 - t0 <= 0:
            return None
        return len(self.requests(t0, t1)) / (t1 - t0)

    def peak(self, t0: float, t1: float, width: float = 1.0) -> int:
        """Most checks in any `width`-second window starting at a check in [t0, t1)."""
        ts = sorted(r[0] for r in self.requests(t0, t1 + width))
        best, j = 0, 0
        for i, t in enumerate(ts):
            if t >= t1:
                break
            while j < len(ts) and ts[j] < t + width:
                j += 1
            best = max(best, j - i)
        return best


def stop_all_counters() -> None:
    for c in list(_LIVE):
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass


atexit.register(stop_all_counters)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
