"""maxconn/queue smoke test: 1000 clients through gproxy, 4 echo servers x maxconn 100.

Runs perf/maxconn_stress.py --clients 1000 --proxy gproxy --check. The gproxy binary comes from
$GPROXY_BIN, else .build/release/gproxy, else .build/debug/gproxy (the script resolves it).

    python3 -m pytest -q Tests/Perf/test_maxconn_small.py
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "perf", "maxconn_stress.py")
sys.path.insert(0, os.path.join(REPO, "perf"))
import _lab  # noqa: E402  (finds the gproxy binary)

CLIENTS = 1000


def test_maxconn_queue_1000_clients(tmp_path):
    binary = _lab.find_gproxy_bin()
    if binary is None or not os.access(binary, os.X_OK):
        pytest.skip("no gproxy binary: swift build -c release --static-swift-stdlib --product gproxy, or set GPROXY_BIN")
    out = tmp_path / "stress.json"
    env = dict(os.environ, GPROXY_BIN=binary)
    cmd = [sys.executable, SCRIPT, "--clients", str(CLIENTS), "--proxy", "gproxy", "--check", "--json", str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    report = f"command: {' '.join(cmd)}\nrc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert out.exists(), report
    r = json.loads(out.read_text())["results"][0]
    assert r["proxy_alive_after"], report
    assert r["served"] == CLIENTS, report
    assert r["lost"] == 0, report
    assert r["corrupted"] == 0, report
    assert r["queue_peak"] > 0, report
    assert p.returncode == 0, report
