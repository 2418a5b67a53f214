#!/usr/bin/env python3
"""Health-checker cost and reaction time.

1. CPU: one asyncio process opens N tiny HTTP responders on 127.0.0.1 (each answers
   `HTTP/1.0 200 OK\\r\\n\\r\\n` and closes). gproxy (--threads 1) checks all of them with
   `check inter 1s` + `option httpchk`. After a warm-up, the CPU time of the checker thread only
   (/proc/<pid>/task/<tid>/stat of the task whose comm is `gproxy-chk`, utime+stime) over the
   measured window, as % of one core, and the checks/s the responders actually received.

2. Reaction: one server at `rise 1 fall 1`, its check responder answering 503. A client connects to
   the listen port in a tight loop (separate process). The responder flips to 200; it records the
   monotonic time just before it sent the first 200; the echo server behind
   records the monotonic time of the first proxied connection it accepts. The difference is the time
   from the last needed check to the first connection routed by the new table. Repeated, then the
   median and p90 are reported.

    perf/checker_bench.py [--gproxy BIN] [--servers 1000] [--seconds 30] [--trials 20] [--json OUT]
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def find_gproxy(arg):
    for b in [arg, os.environ.get("GPROXY_BIN"), f"{ROOT}/.build/release/gproxy", f"{ROOT}/.build/debug/gproxy"]:
        if b and os.access(b, os.X_OK):
            return b
    sys.exit("checker_bench: no gproxy binary (build it or pass --gproxy)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def thread_cpu(pid, comm):
    """(utime+stime ticks, schedstat ns, utime ticks, stime ticks) of the task named `comm`, or None."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name != comm:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15.
        utime, stime = int(fields[11]), int(fields[12])
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except OSError:
            ns = None
        return utime + stime, ns, utime, stime
    return None


def start_gproxy(binary, config_text):
    cfg = tempfile.NamedTemporaryFile("w", suffix=".cfg", prefix="gproxy-bench-", delete=False)
    cfg.write(config_text)
    cfg.close()
    proc = subprocess.Popen([binary, "-f", cfg.name, "--threads", "1", "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    return proc, cfg.name


def stop_gproxy(proc, cfg):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    os.unlink(cfg)


# ---------------------------------------------------------------------------------------------
# 1. CPU of the checker thread with N servers


async def cpu_bench(binary, n, seconds, warmup):
    received = 0

    async def respond(reader, writer):
        nonlocal received
        try:
            await reader.readuntil(b"\r\n\r\n")
            received += 1
            writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(respond, "127.0.0.1", 0, backlog=64) for _ in range(n)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    listen_port = free_port()
    lines = [
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout check 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "",
        "listen bench",
        f"    bind 127.0.0.1:{listen_port}",
        "    option httpchk",
    ]
    lines += [f"    server s{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(ports)]
    proc, cfg = start_gproxy(binary, "\n".join(lines) + "\n")
    try:
        deadline = time.monotonic() + 10
        while (cpu := thread_cpu(proc.pid, "gproxy-chk")) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gproxy did not start: {proc.stderr.read().decode()[-2000:]}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup)
        t0, c0, r0 = time.monotonic(), thread_cpu(proc.pid, "gproxy-chk"), received
        await asyncio.sleep(seconds)
        t1, c1, r1 = time.monotonic(), thread_cpu(proc.pid, "gproxy-chk"), received
        wall = t1 - t0
        result = {
            "servers": n,
            "window_s": round(wall, 2),
            "checker_cpu_pct_of_one_core": round(100 * (c1[0] - c0[0]) / CLK_TCK / wall, 2),
            "checker_cpu_pct_schedstat": round(100 * (c1[1] - c0[1]) / 1e9 / wall, 2) if c0[1] is not None else None,
            "checker_user_pct": round(100 * (c1[2] - c0[2]) / CLK_TCK / wall, 2),
            "checker_system_pct": round(100 * (c1[3] - c0[3]) / CLK_TCK / wall, 2),
            "cpu_us_per_check": round(1e6 * (c1[0] - c0[0]) / CLK_TCK / max(1, r1 - r0), 1),
            "checks_per_s_received": round((r1 - r0) / wall, 1),
            "expected_checks_per_s": n,
        }
    finally:
        stop_gproxy(proc, cfg)
        for s in servers:
            s.close()
    return result


# ---------------------------------------------------------------------------------------------
# 2. Time from the last needed check to the first connection routed by the new table


def listener(backlog):
    """A blocking listening socket on 127.0.0.1 and its port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock, sock.getsockname()[1]


class Responder(threading.Thread):
    """Blocking check responder: 503 or 200; records when the first 200 after `arm()` went out."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock, self.port = listener(64)
        self.status = 503
        self.first_ok_ns = None
        self.armed = False
        self.lock = threading.Lock()

    def arm_ok(self):
        with self.lock:
            self.first_ok_ns = None
            self.armed = True
            self.status = 200

    def set_fail(self):
        with self.lock:
            self.armed = False
            self.status = 503

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                with self.lock:
                    status = self.status
                line = b"HTTP/1.0 200 OK\r\n\r\n" if status == 200 else b"HTTP/1.0 503 Service Unavailable\r\n\r\n"
                # Taken just before the answer goes out: the interval measured can only be longer
                # than the true one (by one send), never shorter because of thread scheduling here.
                now = time.monotonic_ns()
                c.sendall(line)
                c.close()
                with self.lock:
                    if status == 200 and self.armed and self.first_ok_ns is None:
                        self.first_ok_ns = now
            except OSError:
                c.close()


class EchoServer(threading.Thread):
    """The server behind the proxy: records the monotonic time of every accept after `arm()`."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock, self.port = listener(4096)
        self.first_accept_ns = None
        self.armed = False
        self.accepted = 0

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            now = time.monotonic_ns()
            if self.armed and self.first_accept_ns is None:
                self.first_accept_ns = now
            self.accepted += 1
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()


CLIENT_LOOP = r"""
import socket, struct, sys
port = int(sys.argv[1])
linger = struct.pack("ii", 1, 0)
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        pass
    s.close()
"""


def csv_status(stats_port, proxy, server):
    s = socket.create_connection(("127.0.0.1", stats_port), 2)
    s.sendall(b"GET /;csv HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    for line in data.decode().split("\r\n\r\n", 1)[-1].splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == proxy and f[1] == server:
            return f[17]
    return None


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


def reaction_bench(binary, trials, inter_ms):
    responder, echo = Responder(), EchoServer()
    responder.start()
    echo.start()
    listen_port, stats_port = free_port(), free_port()
    config = f"""defaults
    timeout connect 1s
    timeout check 1s
    timeout client 10s
    timeout server 10s

listen flip
    bind 127.0.0.1:{listen_port}
    mode tcp
    option httpchk
    server s1 127.0.0.1:{echo.port} check port {responder.port} inter {inter_ms}ms rise 1 fall 1

listen stats
    mode http
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /
"""
    proc, cfg = start_gproxy(binary, config)
    samples_us, failures = [], 0
    try:
        if not wait_for(lambda: _port_open(stats_port), 10):
            raise SystemExit(f"gproxy did not start: {proc.stderr.read().decode()[-2000:]}")
        for _ in range(trials):
            responder.set_fail()
            if not wait_for(lambda: csv_status(stats_port, "flip", "s1") == "DOWN", 5):
                failures += 1
                continue
            echo.armed, echo.first_accept_ns = False, None
            client = subprocess.Popen([sys.executable, "-c", CLIENT_LOOP, str(listen_port)], stdout=subprocess.PIPE)
            client.stdout.readline()
            time.sleep(0.05)  # the loop is running: every connection meets the DOWN table
            echo.armed = True
            responder.arm_ok()
            ok = wait_for(lambda: echo.first_accept_ns is not None and responder.first_ok_ns is not None, 5)
            client.kill()
            client.wait()
            if not ok:
                failures += 1
                continue
            samples_us.append((echo.first_accept_ns - responder.first_ok_ns) / 1000)
    finally:
        stop_gproxy(proc, cfg)
    ordered = sorted(samples_us)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))] if ordered else None
    return {
        "trials": trials,
        "measured": len(samples_us),
        "failed": failures,
        "median_us": round(statistics.median(samples_us), 1) if samples_us else None,
        "p90_us": round(p90, 1) if p90 is not None else None,
        "min_us": round(ordered[0], 1) if ordered else None,
        "max_us": round(ordered[-1], 1) if ordered else None,
        "samples_us": [round(s, 1) for s in samples_us],
    }


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gproxy")
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--inter-ms", type=int, default=100)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    binary = find_gproxy(args.gproxy)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    result = {"gproxy": binary, "nproc": os.cpu_count()}
    if not args.skip_cpu:
        result["cpu"] = asyncio.run(cpu_bench(binary, args.servers, args.seconds, args.warmup))
        print(json.dumps(result["cpu"]), flush=True)
    result["reaction"] = reaction_bench(binary, args.trials, args.inter_ms)
    print(json.dumps({k: v for k, v in result["reaction"].items() if k != "samples_us"}), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
