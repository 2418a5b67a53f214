"""Moving from HAProxy: `gproxy -f haproxy.cfg -sf <haproxy pid>` takes over the same config's ports
from a running haproxy with no restart window. gproxy binds beside haproxy (SO_REUSEPORT, as haproxy
does), then sends it SIGUSR1, which is haproxy's own soft stop: it finishes its sessions and exits.

Needs haproxy (run.sh installs it). Everything binds 127.0.0.1; processes are stopped by pid.
"""
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "perf"))
import _lab  # noqa: E402  (free ports, waits, the echo client)

from proxy import terminate  # noqa: E402


def haproxy_binary() -> str:
    for p in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if p and os.access(p, os.X_OK):
            return p
    raise AssertionError("haproxy is not installed (Tests/Integration/run.sh installs it)")


def gproxy_binary() -> str:
    return os.environ.get("GPROXY_BIN") or str(ROOT / ".build" / "release" / "gproxy")


def test_gproxy_takes_over_from_a_running_haproxy(tmp_path):
    echo_port, port, stats_port = _lab.free_port(), _lab.free_port(), _lab.free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen rw
    bind 127.0.0.1:{port}
    server echo 127.0.0.1:{echo_port}
listen stats
    mode http
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /
""")
    echo = subprocess.Popen([sys.executable, str(ROOT / "perf" / "echo_server.py"), "--ports", str(echo_port)])
    haproxy = gproxy = None
    try:
        _lab.wait_port(echo_port, proc=echo)
        haproxy = subprocess.Popen([haproxy_binary(), "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        _lab.wait_port(port, proc=haproxy)

        stop = threading.Event()
        counts = {"ok": 0, "lost": 0}
        lock = threading.Lock()

        t = threading.Thread(target=_lab.echo_round_trips, args=(port, stop, counts, lock))
        t.start()
        time.sleep(0.3)
        gproxy = subprocess.Popen([gproxy_binary(), "-q", "-f", str(cfg), "-sf", str(haproxy.pid)])
        haproxy.wait(timeout=15)
        time.sleep(0.5)
        stop.set()
        t.join()

        assert haproxy.returncode == 0, "haproxy's soft stop (SIGUSR1) should end it cleanly"
        assert gproxy.poll() is None, "gproxy should keep serving"
        # One client, one connection in flight at a time: at most the one haproxy had queued when it
        # closed its sockets can be lost (haproxy's own -sf window); everything else is served.
        assert counts["lost"] <= 1, counts
        assert counts["ok"] > 50, counts
        # The stats port came over too, and gproxy's frontend served the clients after the switch.
        csv = urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/;csv", timeout=5).read().decode()
        row = next(r.split(",") for r in csv.splitlines() if r.startswith("rw,FRONTEND,"))
        assert int(row[7]) > 0, row[:10]  # stot
        print(f"migration: {counts['ok']} served, {counts['lost']} lost, gproxy served {row[7]} after the switch")
    finally:
        terminate(gproxy)
        terminate(haproxy)
        terminate(echo)
