"""Starts gproxy or HAProxy with a config file, stops it by pid.

Kinds: `haproxy`, `gproxy` (both with the seed config) and `gproxy-patroni` (the gproxy binary with
the seed config plus `patroni primary`/`patroni replica`, see `patroni_cluster.seed_config_text`).
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def terminate(proc: "subprocess.Popen | None") -> None:
    """Stops a child by its pid: SIGTERM, then SIGKILL after 5 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

_LIVE: list["Proxy"] = []

KINDS = ("gproxy", "gproxy-patroni", "haproxy")


def binary_kind(kind: str) -> str:
    """The executable a proxy kind runs: gproxy-patroni is gproxy with a different config."""
    return "haproxy" if kind == "haproxy" else "gproxy"


def find_gproxy() -> str | None:
    env = os.environ.get("GPROXY_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    for p in (os.path.join(REPO, ".build", "release", "gproxy"), os.path.join(REPO, ".build", "debug", "gproxy")):
        if os.access(p, os.X_OK):
            return p
    return None


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or (os.access("/usr/sbin/haproxy", os.X_OK) and "/usr/sbin/haproxy") or None


def port_accepts(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class Proxy:
    def __init__(self, kind: str, config_text: str, ports: dict):
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.ports = ports
        self.dir = tempfile.mkdtemp(prefix=f"gproxy-integ-{kind}-")
        self.cfg = os.path.join(self.dir, "proxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "proxy.log")
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if binary_kind(self.kind) == "haproxy":
            exe = find_haproxy()
            if not exe:
                raise FileNotFoundError("haproxy not installed (apt-get install -y haproxy)")
            return [exe, "-f", self.cfg, "-db"]
        exe = find_gproxy()
        if not exe:
            raise FileNotFoundError("gproxy binary not found: set GPROXY_BIN or build .build/release/gproxy")
        return [exe, "-f", self.cfg]

    def spawn(self) -> "Proxy":
        """Starts the process and returns at once (no wait for the ports)."""
        cmd = self.command()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.dir)
        _LIVE.append(self)
        self.started_at = time.time()
        return self

    def start(self, timeout: float = 15) -> "Proxy":
        self.spawn()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited rc={self.proc.returncode}:\n{self.log_tail()}")
            if all(port_accepts(p) for p in self.ports.values()):
                print(f"[{time.strftime('%H:%M:%S')}] {self.kind} pid {self.proc.pid} listening on {self.ports}",
                      file=sys.stderr, flush=True)
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.kind} ports {self.ports} not accepting after {timeout}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc)
        if self in _LIVE:
            _LIVE.remove(self)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("INTEG_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def cleanup_all_proxies() -> None:
    for p in list(_LIVE):
        try:
            p.cleanup()
        except Exception:  # noqa: BLE001
            pass


atexit.register(cleanup_all_proxies)
