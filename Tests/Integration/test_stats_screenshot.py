"""scripts/stats-screenshot end to end: gproxy --demo, the stats page saved as HTML and rendered to a PNG."""
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "stats-screenshot"


def chromium_available() -> bool:
    if any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")):
        return True
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900)
        if not any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")):
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900)
    return any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome"))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR", "first chunk is not IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("window,min_width", [("1400,900", 800), ("412,900", 400)])
def test_stats_screenshot(tmp_path, window, min_width):
    if not chromium_available():
        pytest.skip("chromium cannot be installed here")
    env = dict(os.environ, WINDOW=window)
    out = tmp_path / "out"
    run = subprocess.run([str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    png = out / "stats.png"
    html = out / "stats.html"
    assert png.is_file() and html.is_file()
    data = png.read_bytes()
    width, height = png_size(data)
    assert width >= min_width and height >= 300, (width, height)
    assert len(data) > 10_000, "suspiciously small screenshot"

    page = html.read_text()
    tables = proxy_tables(page)
    assert {"opengauss", "opengauss_balance", "stats"} <= set(tables), sorted(tables)
    for proxy in ("opengauss", "opengauss_balance"):
        rows = tables[proxy]
        assert rows.get("Frontend") == "frontend" and rows.get("Backend") == "backend", rows
        for server in ("pg1", "pg2", "pg3", "pg4"):
            assert server in rows, f"no {server} row in {proxy}"
    # The writer's proxy shows pg1 UP (green) and the replicas DOWN (red); the reader's the reverse.
    assert tables["opengauss"]["pg1"] == "active_up"
    assert tables["opengauss_balance"]["pg1"] == "active_down"
    for server in ("pg2", "pg3", "pg4"):
        assert tables["opengauss"][server] == "active_down"
        assert tables["opengauss_balance"][server] == "active_up"


def proxy_tables(page: str) -> dict[str, dict[str, str]]:
    """Proxy name -> {row name -> row CSS class}, read from the stats page's tables."""
    out: dict[str, dict[str, str]] = {}
    for block in page.split('<div class="px">')[1:]:
        name = re.search(r"<tr class=\"pxname\"><th[^>]*>(?:<span>)?([^<]+)<", block)
        assert name, block[:200]
        rows = re.findall(r'<tr class="([^"]+)"><td class="name">([^<]+)</td>', block)
        out[name.group(1)] = {row: cls for cls, row in rows}
    return out
