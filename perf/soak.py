#!/usr/bin/env python3
"""Soak run: gproxy under churn for a long time, then a verdict on leaks and lost bytes.

    python3 perf/soak.py [--minutes 30] [--reload-every 60] [--kill-every 45]

For the whole run, through one `listen` with three health-checked backends (`check inter 500ms
fall 3 rise 2`, `retries 3`, `option redispatch`):
- churn clients: connect, one short echo round trip, close;
- keep-alive clients: a few hundred round trips (1 B .. 4 KiB) on one connection, then a new one;
- bulk clients: 2..8 MiB of random bytes each way per connection, every byte compared with what was
  sent (offset by offset as it arrives, then sha256 of the whole): a byte changed, duplicated or
  dropped is caught;
- backends restarting: one backend killed (SIGTERM, no handler: it dies at once) and restarted on
  the same port every --kill-every s, 3 s down (the checks mark it DOWN, then UP again);
- a `-sf` reload every --reload-every s (new process, `-p pidfile`, takes the old one's sockets); the
  pid is followed through the pidfile and `show info`; each old process must exit by itself once its
  last session ended;
- the runtime socket (`show stat`, `show info`, `show servers state`, `set server soak/bN weight W`)
  and the stats listener (`GET /;csv`, `GET /`) a few times per second each.

Each backend greets a connection with `HELLO <name> <generation>`, so a session that fails can be
put down to a backend restart exactly: its backend instance was killed before it failed. A session
that failed before the greeting counts as ended by a restart only if it overlapped a backend's
down time (kill .. back up + 1 s). Everything else that fails is lost.

Every 10 s: RSS, open fds and pipes (`pipe:` entries in /proc/PID/fd) of the newest gproxy and summed
over the live ones, live gproxy processes, sessions (`show info` CurrConns). Slopes are least
squares per hour over the last two thirds of the run (the first third is warm-up).

Verdict (exit 1 on any): a corrupted byte; a session, runtime-socket or stats request lost outside a
backend restart; a reload that did not hand over; an old process that did not exit by itself within
60 s or exited non-zero; sessions left open once every client has closed; and growth of the newest
process's RSS, fds or pipes: a slope that is both significant (over 3 standard errors) and larger
than the threshold -- RSS 2 MiB/h, fds and pipes max(5 % of the mean, 5)/h. (A reload every minute
restarts the newest process's own memory; `--reload-every 0` runs one process for the whole time.)

Everything binds 127.0.0.1; every process is started and stopped by its pid through _lab.Lab.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import random
import socket
import subprocess
import sys
import time

import _lab

SAMPLE_EVERY = 10.0
DOWN_SECONDS = 3.0
OLD_EXIT_LIMIT = 60.0
RSS_LIMIT_KB_PER_H = 2048
FD_LIMIT_FRACTION = 0.05
FD_LIMIT_MIN = 5.0


# ----------------------------------------------------------------------------- backend process

class Greeter(asyncio.Protocol):
    """Says who it is, then echoes every byte; half-closes when the peer half-closes."""

    def __init__(self, hello: bytes, fault: str):
        self.hello = hello
        self.fault = fault  # "none"; "corrupt" / "drop": the harness's own self-check (--inject)

    def connection_made(self, transport):
        self.t = transport
        transport.write(self.hello)

    def data_received(self, data):
        if self.fault == "corrupt" and random.random() < 0.001:
            data = bytes([data[0] ^ 1]) + data[1:]
        elif self.fault == "drop" and random.random() < 0.001:
            self.t.abort()
            return
        self.t.write(data)

    def eof_received(self):
        return False


async def backend_main(port: int, name: str, gen: int, fault: str) -> None:
    loop = asyncio.get_running_loop()
    hello = f"HELLO {name} {gen}\n".encode()
    deadline = time.monotonic() + 10
    while True:  # the port may still be taken for a moment after the previous instance died
        try:
            server = await loop.create_server(lambda: Greeter(hello, fault), "127.0.0.1", port, backlog=1024,
                                              reuse_address=True)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    async with server:
        await server.serve_forever()  # until killed


# ----------------------------------------------------------------------------- helpers

def backend_port() -> int:
    """A free port below the ephemeral range, so that no outgoing connection of gproxy (or of the
    clients) can hold it as its local port while the backend on it is down."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    for _ in range(1000):
        port = random.randint(max(1024, lo - 12000), lo - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return _lab.free_port()


def pipe_count(pid: int) -> int:
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return -1
    return n


def slope_per_hour(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares over (seconds, value): (slope per hour, its standard error per hour, mean)."""
    n = len(points)
    if n < 3:
        return 0.0, math.inf, (points[0][1] if points else 0.0)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    sxx = sum((t - mt) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0, math.inf, mv
    b = sum((t - mt) * (v - mv) for t, v in points) / sxx
    resid = sum((v - mv - b * (t - mt)) ** 2 for t, v in points)
    se = math.sqrt(resid / (n - 2) / sxx)
    return b * 3600, se * 3600, mv


class Backend:
    def __init__(self, name: str, port: int):
        self.name, self.port = name, port
        self.gen = 0
        self.proc: subprocess.Popen | None = None
        self.killed_at: dict[int, float] = {}  # generation -> monotonic time it was killed


# ----------------------------------------------------------------------------- the run

class Soak:
    def __init__(self, args):
        self.a = args
        self.lab = _lab.Lab(prefix="gproxy-soak-")
        self.t0 = time.monotonic()
        self.stop = asyncio.Event()
        self.backends = [Backend(f"b{i + 1}", backend_port()) for i in range(args.backends)]
        self.down_windows: list[tuple[float, float]] = []  # (killed, back up + 1 s)
        self.port = _lab.free_port()
        self.stats_port = _lab.free_port()
        self.sock = self.lab.path("admin.sock")
        self.pidfile = self.lab.path("gproxy.pid")
        self.cfg = ""
        self.current: subprocess.Popen | None = None
        self.old: list[tuple[subprocess.Popen, float]] = []  # replaced, still running
        self.gen = 0
        # accounting
        self.made = {k: 0 for k in ("churn", "keepalive", "bulk", "admin", "stats")}
        self.ok = dict(self.made)
        self.failures: list[dict] = []       # sessions that failed (classified at the end)
        self.corrupt: list[str] = []
        self.round_trips = 0
        self.bytes_relayed = 0
        self.reloads = 0
        self.reload_problems: list[str] = []
        self.handover_s: list[float] = []
        self.old_exit_s: list[float] = []
        self.kills = 0
        self.samples: list[dict] = []
        self.quiet: dict = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ------------------------------------------------------------------ processes
    def write_cfg(self) -> str:
        lines = ["retries 3", "default-server inter 500ms fall 3 rise 2"]
        lines += [f"server {b.name} 127.0.0.1:{b.port} check" for b in self.backends]
        text = _lab.proxy_cfg(
            [{"name": "soak", "port": self.port, "servers": [], "options": ["redispatch"], "lines": lines}],
            nbthread=2, maxconn=4000, stats_port=self.stats_port,
            extra_global=[f"stats socket {self.sock} mode 600 level admin"])
        path = self.lab.write("soak.cfg", text)
        _lab.check_cfg("gproxy", path)
        return path

    def start_backend(self, b: Backend) -> None:
        b.gen += 1
        b.proc = self.lab.start(f"backend-{b.name}-{b.gen}", [
            sys.executable, os.path.abspath(__file__), "--backend", str(b.port), b.name, str(b.gen), self.a.inject])

    def start_gproxy(self, replace: subprocess.Popen | None) -> subprocess.Popen:
        argv = _lab.proxy_argv("gproxy", self.cfg) + ["-p", self.pidfile]
        if replace is not None:
            argv += ["-sf", str(replace.pid)]
        p = self.lab.start(f"gproxy-{self.gen}", argv)
        self.gen += 1
        return p

    def live_gproxies(self) -> list[subprocess.Popen]:
        out = [p for p, _ in self.old if p.poll() is None]
        if self.current is not None and self.current.poll() is None:
            out.append(self.current)
        return out

    # ------------------------------------------------------------------ session bookkeeping
    def fail(self, kind: str, t_start: float, reason: str, banner: tuple[str, int] | None, detail: str = "") -> None:
        if len(self.failures) < 200_000:
            self.failures.append({"kind": kind, "start": t_start, "end": time.monotonic(),
                                  "reason": reason, "detail": detail, "banner": banner})

    def corrupted(self, kind: str, what: str) -> None:
        self.corrupt.append(f"{kind}: {what}")

    async def connect(self, timeout: float = 5.0):
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20), timeout)
        return r, w

    @staticmethod
    async def hello(r) -> tuple[str, int]:
        line = await asyncio.wait_for(r.readline(), 5.0)
        parts = line.decode(errors="replace").split()
        if len(parts) != 3 or parts[0] != "HELLO":
            raise ConnectionError("no greeting" if not line else f"bad greeting {line[:40]!r}")
        return parts[1], int(parts[2])

    @staticmethod
    def reason(e: BaseException) -> str:
        if isinstance(e, asyncio.TimeoutError):
            return "timeout"
        if isinstance(e, asyncio.IncompleteReadError):
            return "closed early"
        if isinstance(e, ConnectionRefusedError):
            return "refused"
        if isinstance(e, ConnectionResetError):
            return "reset"
        if isinstance(e, ConnectionError):
            return str(e) or type(e).__name__
        return f"{type(e).__name__}: {e}"

    @staticmethod
    async def close(w) -> None:
        w.close()
        try:
            await asyncio.wait_for(w.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass

    # ------------------------------------------------------------------ clients
    async def churn_client(self, i: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            self.made["churn"] += 1
            t = time.monotonic()
            banner = None
            w = None
            msg = f"ping {i} {n}\n".encode()
            try:
                r, w = await self.connect()
                banner = await self.hello(r)
                w.write(msg)
                got = await asyncio.wait_for(r.readexactly(len(msg)), 5)
                if got != msg:
                    self.corrupted("churn", f"sent {msg!r} got {got!r}")
                else:
                    self.ok["churn"] += 1
                    self.round_trips += 1
                    self.bytes_relayed += 2 * len(msg)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                if isinstance(e, asyncio.IncompleteReadError) and e.partial and not msg.startswith(e.partial):
                    self.corrupted("churn", f"sent {msg!r} got {e.partial!r} then EOF")
                self.fail("churn", t, self.reason(e), banner)
            finally:
                if w is not None:
                    await self.close(w)
            await asyncio.sleep(self.a.churn_pause)

    async def keepalive_client(self, i: int) -> None:
        rng = random.Random(i)
        while not self.stop.is_set():
            self.made["keepalive"] += 1
            t = time.monotonic()
            banner = None
            w = None
            done = 0
            try:
                r, w = await self.connect()
                banner = await self.hello(r)
                for _ in range(self.a.keepalive_trips):
                    msg = os.urandom(rng.randint(1, 4096))
                    w.write(msg)
                    try:
                        got = await asyncio.wait_for(r.readexactly(len(msg)), 5)
                    except asyncio.IncompleteReadError as e:
                        if not msg.startswith(e.partial):
                            self.corrupted("keepalive", f"round trip {done}: {len(e.partial)} bytes differ, then EOF")
                        raise
                    if got != msg:
                        self.corrupted("keepalive", f"round trip {done}: {len(msg)} bytes differ")
                        break
                    done += 1
                    self.round_trips += 1
                    self.bytes_relayed += 2 * len(msg)
                    await asyncio.sleep(rng.uniform(0, 2 * self.a.keepalive_pause))
                else:
                    self.ok["keepalive"] += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                self.fail("keepalive", t, self.reason(e), banner, f"after {done} round trips")
            finally:
                if w is not None:
                    await self.close(w)

    async def bulk_client(self, i: int) -> None:
        rng = random.Random(1000 + i)
        while not self.stop.is_set():
            self.made["bulk"] += 1
            size = rng.randint(2 << 20, 8 << 20)
            sent = os.urandom(size)
            view = memoryview(sent)
            t = time.monotonic()
            banner = None
            w = None
            pos = 0
            h = hashlib.sha256()
            try:
                r, w = await self.connect()
                banner = await self.hello(r)

                async def send():
                    for off in range(0, size, 256 << 10):
                        w.write(view[off:off + (256 << 10)])
                        await w.drain()
                    w.write_eof()

                sender = asyncio.ensure_future(send())
                try:
                    while True:
                        data = await asyncio.wait_for(r.read(1 << 20), 20)
                        if not data:
                            break
                        if pos + len(data) > size:
                            raise ValueError(f"{pos + len(data) - size} bytes more than sent")
                        if view[pos:pos + len(data)] != data:
                            raise ValueError(f"bytes differ in [{pos}, {pos + len(data)})")
                        h.update(data)
                        pos += len(data)
                    await asyncio.wait_for(sender, 20)
                finally:
                    if not sender.done():
                        sender.cancel()
                if pos < size:
                    raise ConnectionError("closed early")
                if h.digest() != hashlib.sha256(sent).digest():
                    raise ValueError("sha256 differs")
                self.ok["bulk"] += 1
                self.bytes_relayed += 2 * size
            except ValueError as e:
                self.corrupted("bulk", f"{size} bytes: {e}")
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                self.bytes_relayed += size + pos  # an estimate: what went through before it ended
                self.fail("bulk", t, self.reason(e), banner, f"after {pos} of {size} bytes back")
            finally:
                if w is not None:
                    await self.close(w)
            await asyncio.sleep(self.a.bulk_pause)

    async def admin(self, cmd: str) -> str:
        r, w = await asyncio.wait_for(asyncio.open_unix_connection(self.sock, limit=1 << 22), 5)
        try:
            w.write(cmd.encode() + b"\n")
            return (await asyncio.wait_for(r.read(), 5)).decode(errors="replace")
        finally:
            await self.close(w)

    async def admin_client(self) -> None:
        rng = random.Random(7)
        cmds = ["show stat", "show info", "show servers state", "set weight"]
        n = 0
        while not self.stop.is_set():
            kind = cmds[n % len(cmds)]
            n += 1
            cmd = kind
            if kind == "set weight":
                cmd = f"set server soak/{rng.choice(self.backends).name} weight {rng.randint(10, 256)}"
            self.made["admin"] += 1
            t = time.monotonic()
            try:
                out = await self.admin(cmd)
                good = {"show stat": out.startswith("# pxname"),
                        "show info": "\nPid: " in "\n" + out and "CurrConns:" in out,
                        "show servers state": out.startswith("1\n# be_id"),
                        "set weight": out.strip() == ""}[kind]
                if good:
                    self.ok["admin"] += 1
                else:
                    self.fail("admin", t, f"{kind}: unexpected answer", None, repr(out[:80]))
            except (OSError, asyncio.TimeoutError) as e:
                self.fail("admin", t, f"{kind}: {self.reason(e)}", None)
            await asyncio.sleep(self.a.admin_pause)

    async def stats_client(self) -> None:
        n = 0
        while not self.stop.is_set():
            path = "/;csv" if n % 2 == 0 else "/"
            n += 1
            self.made["stats"] += 1
            t = time.monotonic()
            w = None
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.stats_port), 5)
                w.write(f"GET {path} HTTP/1.0\r\nHost: soak\r\n\r\n".encode())
                body = (await asyncio.wait_for(r.read(), 5)).decode(errors="replace")
                status = body.split("\r\n", 1)[0]
                good = " 200" in status and (("# pxname" in body) if path == "/;csv" else ("<html" in body.lower()))
                if good:
                    self.ok["stats"] += 1
                else:
                    self.fail("stats", t, f"GET {path}: bad answer", None, repr(status[:80]))
            except (OSError, asyncio.TimeoutError) as e:
                self.fail("stats", t, f"GET {path}: {self.reason(e)}", None)
            finally:
                if w is not None:
                    await self.close(w)
            await asyncio.sleep(self.a.admin_pause)

    # ------------------------------------------------------------------ churn of the system itself
    async def sleep_or_stop(self, secs: float) -> bool:
        """True when the run is over."""
        try:
            await asyncio.wait_for(self.stop.wait(), secs)
            return True
        except asyncio.TimeoutError:
            return False

    async def info_pid(self) -> int | None:
        try:
            out = await self.admin("show info")
        except (OSError, asyncio.TimeoutError):
            return None
        for line in out.splitlines():
            if line.startswith("Pid:"):
                return int(line.split()[1])
        return None

    async def reloader(self) -> None:
        if self.a.reload_every <= 0:
            return
        while not await self.sleep_or_stop(self.a.reload_every):
            old = self.current
            t = time.monotonic()
            new = self.start_gproxy(old)
            self.reloads += 1
            took = None
            while time.monotonic() - t < 10:
                if new.poll() is not None:
                    break
                try:
                    with open(self.pidfile) as f:
                        in_file = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    in_file = 0
                if in_file == new.pid and await self.info_pid() == new.pid:
                    took = time.monotonic() - t
                    break
                await asyncio.sleep(0.05)
            if new.poll() is not None:
                self.reload_problems.append(f"reload {self.reloads}: new process exited {new.returncode}: "
                                            f"{self.lab.log(new.lab_name)[-300:]!r}")
                continue  # the old one goes on serving
            if took is None:
                self.reload_problems.append(f"reload {self.reloads}: pidfile/show info did not name pid {new.pid} within 10 s")
            else:
                self.handover_s.append(took)
            self.current = new
            self.old.append((old, time.monotonic()))

    async def reaper(self) -> None:
        while True:
            for p, since in list(self.old):
                if p.poll() is not None:
                    self.old.remove((p, since))
                    self.old_exit_s.append(time.monotonic() - since)
                    if p.returncode != 0:
                        self.reload_problems.append(f"old pid {p.pid} exited with {p.returncode}: "
                                                    f"{self.lab.log(p.lab_name)[-300:]!r}")
                    self.lab.stop(p)  # reaped already; drops it from the lab's list
                elif time.monotonic() - since > OLD_EXIT_LIMIT:
                    self.old.remove((p, since))
                    self.reload_problems.append(f"old pid {p.pid} still running {OLD_EXIT_LIMIT:.0f} s after its "
                                                f"successor took over (fds {_lab.fd_count(p.pid)}): stopped")
                    self.lab.stop(p)
            if self.stop.is_set() and not self.old:
                return
            await asyncio.sleep(0.2)

    async def backend_killer(self) -> None:
        if self.a.kill_every <= 0:
            return
        k = 0
        while not await self.sleep_or_stop(self.a.kill_every):
            b = self.backends[k % len(self.backends)]
            k += 1
            killed = time.monotonic()
            b.killed_at[b.gen] = killed
            self.lab.stop(b.proc)
            self.kills += 1
            await asyncio.sleep(DOWN_SECONDS)
            self.start_backend(b)
            up = None
            for _ in range(200):
                try:
                    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", b.port), 1)
                    await self.close(w)
                    up = time.monotonic()
                    break
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.05)
            if up is None:
                self.reload_problems.append(f"backend {b.name} did not come back: {self.lab.log(b.proc.lab_name)[-300:]!r}")
                up = time.monotonic()
            self.down_windows.append((killed, up + 1.0))

    async def sample(self) -> dict:
        live = self.live_gproxies()
        newest = self.current
        s = {"t": self.now(), "procs": len(live),
             "rss_kb": _lab.rss_kb(newest.pid), "fds": _lab.fd_count(newest.pid), "pipes": pipe_count(newest.pid),
             "rss_sum_kb": sum(_lab.rss_kb(p.pid) for p in live),
             "fds_sum": sum(max(0, _lab.fd_count(p.pid)) for p in live),
             "pipes_sum": sum(max(0, pipe_count(p.pid)) for p in live),
             "sessions": None, "fds_other": None}
        try:
            for line in (await self.admin("show info")).splitlines():
                if line.startswith("CurrConns:"):
                    s["sessions"] = int(line.split()[1])
                    s["fds_other"] = s["fds"] - s["pipes"] - 2 * s["sessions"]
        except (OSError, asyncio.TimeoutError, ValueError):
            pass
        return s

    async def sampler(self) -> None:
        if await self.sleep_or_stop(SAMPLE_EVERY / 2):  # between reloads and kills, not on them
            return
        while True:
            s = await self.sample()
            self.samples.append(s)
            lost = sum(1 for f in self.failures)
            print(f"[{s['t']:7.0f}s] gproxy pid {self.current.pid} ({s['procs']} live): RSS {s['rss_kb'] / 1024:.1f} MiB "
                  f"(all {s['rss_sum_kb'] / 1024:.1f}), fds {s['fds']}, pipes {s['pipes']}, sessions {s['sessions']}; "
                  f"reloads {self.reloads}, backend kills {self.kills}, round trips {self.round_trips}, "
                  f"bulk {self.ok['bulk']}, failed {lost}, corrupted {len(self.corrupt)}", flush=True)
            if await self.sleep_or_stop(SAMPLE_EVERY):
                return

    # ------------------------------------------------------------------ the whole run
    async def run(self) -> int:
        a = self.a
        for b in self.backends:
            self.start_backend(b)
        for b in self.backends:
            _lab.wait_port(b.port, proc=b.proc)
        self.cfg = self.write_cfg()
        self.current = self.start_gproxy(None)
        _lab.wait_port(self.port, proc=self.current)
        _lab.wait_port(self.stats_port, proc=self.current)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # the first checks mark the servers UP
        print(f"soak {a.minutes} min: gproxy {_lab.gproxy_bin()} on 127.0.0.1:{self.port}, stats :{self.stats_port}, "
              f"{len(self.backends)} backends {[b.port for b in self.backends]}; {a.churn} churn, {a.keepalive} keep-alive, "
              f"{a.bulk} bulk clients; reload every {a.reload_every} s, a backend killed every {a.kill_every} s", flush=True)
        self.t0 = time.monotonic()
        clients = ([asyncio.ensure_future(self.churn_client(i)) for i in range(a.churn)]
                   + [asyncio.ensure_future(self.keepalive_client(i)) for i in range(a.keepalive)]
                   + [asyncio.ensure_future(self.bulk_client(i)) for i in range(a.bulk)]
                   + [asyncio.ensure_future(self.admin_client()), asyncio.ensure_future(self.stats_client())])
        system = [asyncio.ensure_future(c) for c in (self.reloader(), self.backend_killer(), self.sampler())]
        reaper = asyncio.ensure_future(self.reaper())
        await asyncio.sleep(a.minutes * 60)
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*clients, *system), 120)
        # Every client has closed: gproxy must come back to no session at all.
        t = time.monotonic()
        while True:
            self.quiet = await self.sample()
            if self.quiet["sessions"] == 0 and not self.live_gproxies()[:-1] or time.monotonic() - t > 10:
                break
            await asyncio.sleep(0.2)
        await asyncio.wait_for(reaper, OLD_EXIT_LIMIT + 10)
        self.quiet["procs"] = len(self.live_gproxies())
        return self.report()

    # ------------------------------------------------------------------ verdict
    def classify(self) -> tuple[list[dict], list[dict]]:
        killed = {(b.name, g): t for b in self.backends for g, t in b.killed_at.items()}
        by_restart, lost = [], []
        for f in self.failures:
            if f["banner"] is not None:
                t = killed.get(f["banner"])
                (by_restart if t is not None and t <= f["end"] + 0.05 else lost).append(f)
            elif any(k <= f["end"] and f["start"] <= up for k, up in self.down_windows):
                by_restart.append(f)
            else:
                lost.append(f)
        return by_restart, lost

    def scan_logs(self) -> None:
        """gproxy's own log lines other than the expected server state changes and stop notices."""
        expected = ("is DOWN, reason: Layer4", "is UP, reason: Layer4", "Proxy soak stopped", "Proxy stats stopped",
                    "Server soak/", "backend soak has no server available")
        odd: dict[str, int] = {}
        for name in os.listdir(self.lab.dir):
            if name.startswith("gproxy-") and name.endswith(".log"):
                for line in self.lab.log(name[:-4]).splitlines():
                    if line.strip() and not any(e in line for e in expected):
                        key = " ".join("N" if w.strip("(),:").isdigit() else w for w in line.split())[:160]
                        odd[key] = odd.get(key, 0) + 1
        for k, v in sorted(odd.items(), key=lambda kv: -kv[1])[:8]:
            print(f"gproxy log ×{v}: {k}")

    def report(self) -> int:
        a = self.a
        by_restart, lost = self.classify()
        bad: list[str] = []
        print()
        print(f"== soak {a.minutes} min, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"loadavg {' '.join(open('/proc/loadavg').read().split()[:3])}")
        print(f"{'kind':<10} {'made':>9} {'ok':>9} {'ended by restart':>17} {'lost':>6}")
        for k in self.made:
            r = sum(1 for f in by_restart if f["kind"] == k)
            l = sum(1 for f in lost if f["kind"] == k)
            print(f"{k:<10} {self.made[k]:>9,} {self.ok[k]:>9,} {r:>17,} {l:>6,}")
        print(f"round trips {self.round_trips:,}, bytes relayed {self.bytes_relayed / 2**30:.2f} GiB (both ways), "
              f"corrupted {len(self.corrupt)}")
        print(f"reloads {self.reloads} (hand-over to the new pid: max {max(self.handover_s, default=0):.2f} s), old processes "
              f"exited {len(self.old_exit_s)} (after max {max(self.old_exit_s, default=0):.1f} s); backend kills {self.kills}")
        reasons: dict[str, int] = {}
        for f in by_restart:
            key = f"{f['kind']}: {f['reason']}"
            reasons[key] = reasons.get(key, 0) + 1
        if reasons:
            print("ended by a backend restart, by reason: " + "; ".join(f"{k} ×{v}" for k, v in sorted(reasons.items())))
        for f in lost[:20]:
            print(f"LOST {f['kind']} at {f['end'] - self.t0:.1f}s (lasted {f['end'] - f['start']:.2f}s, backend "
                  f"{f['banner']}): {f['reason']} {f['detail']}")
        if lost:
            bad.append(f"{len(lost)} lost outside backend restarts")
        for c in self.corrupt[:20]:
            print(f"CORRUPTED {c}")
        if self.corrupt:
            bad.append(f"{len(self.corrupt)} corrupted")
        for p in self.reload_problems:
            print(f"RELOAD/PROCESS {p}")
        if self.reload_problems:
            bad.append(f"{len(self.reload_problems)} reload/process problems")
        self.scan_logs()
        cpu = os.times()
        print(f"this harness (clients, backends' parent) used {cpu.user + cpu.system:.0f} s CPU, backends "
              f"{cpu.children_user + cpu.children_system:.0f} s (reaped ones)")
        q = self.quiet
        print(f"at rest after the clients closed: sessions {q.get('sessions')}, live gproxy {q.get('procs')}, "
              f"RSS {q.get('rss_kb', 0) / 1024:.1f} MiB, fds {q.get('fds')}, pipes {q.get('pipes')}")
        if q.get("sessions") != 0:
            bad.append(f"{q.get('sessions')} sessions still open at rest")
        warm = a.minutes * 60 / 3
        tail = [s for s in self.samples if s["t"] >= warm]
        print(f"slopes per hour over {len(tail)} samples after {warm:.0f} s (least squares ± standard error):")
        for key, unit, scale, limit in (
                ("rss_kb", "MiB", 1 / 1024, lambda m: RSS_LIMIT_KB_PER_H / 1024),
                ("fds", "fds", 1, lambda m: max(FD_LIMIT_FRACTION * m, FD_LIMIT_MIN)),
                ("pipes", "pipes", 1, lambda m: max(FD_LIMIT_FRACTION * m, FD_LIMIT_MIN)),
                ("rss_sum_kb", "MiB", 1 / 1024, None), ("fds_sum", "fds", 1, None), ("pipes_sum", "pipes", 1, None),
                ("fds_other", "fds", 1, None), ("procs", "processes", 1, None), ("sessions", "sessions", 1, None)):
            pts = [(s["t"], s[key] * scale) for s in tail if s[key] is not None and s[key] >= -1000]
            b, se, mean = slope_per_hour(pts)
            lo = min((v for _, v in pts), default=0)
            hi = max((v for _, v in pts), default=0)
            verdict = ""
            if limit is not None:
                lim = limit(mean)
                grows = b > lim and b > 3 * se
                verdict = f"  limit {lim:.2f}/h: {'GROWS' if grows else 'flat'}"
                if grows:
                    bad.append(f"{key} grows {b:+.2f} {unit}/h")
            print(f"  {key:<11} mean {mean:8.2f} {unit:<9} [{lo:.1f} .. {hi:.1f}]  slope {b:+8.2f} ± {se:.2f} /h{verdict}")
        print("VERDICT: " + ("PASS" if not bad else "FAIL: " + "; ".join(bad)), flush=True)
        return 1 if bad else 0


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--backend":
        asyncio.run(backend_main(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--reload-every", type=float, default=60, help="seconds between -sf reloads (0: none)")
    ap.add_argument("--kill-every", type=float, default=45, help="seconds between backend kills (0: none)")
    ap.add_argument("--backends", type=int, default=3)
    ap.add_argument("--churn", type=int, default=4, help="connect/close clients")
    ap.add_argument("--churn-pause", type=float, default=0.01)
    ap.add_argument("--keepalive", type=int, default=4, help="keep-alive clients")
    ap.add_argument("--keepalive-trips", type=int, default=300)
    ap.add_argument("--keepalive-pause", type=float, default=0.01, help="mean pause between round trips")
    ap.add_argument("--bulk", type=int, default=2, help="bulk clients")
    ap.add_argument("--bulk-pause", type=float, default=0.5)
    ap.add_argument("--admin-pause", type=float, default=0.3, help="between runtime-socket / stats requests")
    ap.add_argument("--inject", choices=("none", "corrupt", "drop"), default="none",
                    help="self-check of this harness: the backends flip a byte / reset a connection now and then, "
                         "the verdict must be FAIL")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, logs)")
    args = ap.parse_args()
    _lab.raise_nofile()
    soak = Soak(args)
    soak.lab.keep = args.keep
    try:
        return asyncio.run(soak.run())
    finally:
        if args.keep:
            print(f"logs kept in {soak.lab.dir}")
        soak.lab.close()


if __name__ == "__main__":
    sys.exit(main())
