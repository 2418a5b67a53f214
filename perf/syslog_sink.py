#!/usr/bin/env python3
"""UDP syslog sink for the perf lab: writes every datagram as one line to --out until SIGTERM.

    syslog_sink.py --port 47100 --out /tmp/x.log
"""
import argparse
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, 16 << 20)
            break
        except OSError:
            continue
    s.bind(("127.0.0.1", a.port))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    s.settimeout(0.2)
    with open(a.out, "wb", buffering=1 << 16) as f:
        while not stop:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            f.write(data.rstrip(b"\n") + b"\n")
        s.setblocking(False)
        while True:  # drain what is already queued
            try:
                f.write(s.recv(65536).rstrip(b"\n") + b"\n")
            except (BlockingIOError, OSError):
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
