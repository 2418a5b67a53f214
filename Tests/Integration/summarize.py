"""Prints the failover/switchover comparison table (markdown) from perf/out/failover-<proxy>.txt.

    python3 Tests/Integration/summarize.py [--since 'YYYY-MM-DD HH:MM:SS'] [--nodes 4]

One row per proxy and event: every repetition's figures joined with '/', in run order, so nothing
is averaged away. `back - election` is all_writers_back_s - election_s per repetition.
"""
from __future__ import annotations

import argparse
import glob
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORDER = ["haproxy", "gproxy", "gproxy-patroni"]
LABEL = {"haproxy": "HAProxy 2.6, seed config", "gproxy": "gproxy, seed config",
         "gproxy-patroni": "gproxy Patroni-aware"}


def rows(since: str | None, nodes: int | None):
    out = []
    for path in glob.glob(os.path.join(REPO, "perf", "out", "failover-*.txt")):
        header = None
        for ln in open(path):
            if ln.startswith("| proxy |"):
                header = [c.strip() for c in ln.strip().strip("|").split("|")]
                continue
            if not ln.startswith("| ") or header is None or ln.startswith("|---"):
                continue
            m = re.search(r"<!-- (.*) -->", ln)
            ts = m.group(1) if m else ""
            if since and ts < since:
                continue
            cells = [c.strip() for c in ln.split("<!--")[0].strip().strip("|").split("|")]
            row = dict(zip(header, cells))
            row["ts"] = ts
            if nodes and row.get("nodes") != str(nodes):
                continue
            out.append(row)
    return sorted(out, key=lambda r: r["ts"])


def num(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--since")
    ap.add_argument("--nodes", type=int)
    a = ap.parse_args()
    rs = rows(a.since, a.nodes)
    cols = ["proxy", "event", "reps", "election s", "every writer back s", "back − election s", "failed writes",
            "read-only refusals", "acked lost", "max write stall s", "checks/s steady", "checks/s event (10 s)",
            "checks peak /1 s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    kinds = sorted({r["proxy"] for r in rs}, key=lambda k: ORDER.index(k) if k in ORDER else 99)
    for event in ("failover", "switchover"):
        for k in kinds:
            sel = [r for r in rs if r["proxy"] == k and r["event"] == event]
            if not sel:
                continue

            def j(key, fmt="{:.2f}"):
                vals = []
                for r in sel:
                    v = num(r.get(key))
                    vals.append("-" if v is None else (fmt.format(v) if "." in r.get(key, "") else str(int(v))))
                return " / ".join(vals)

            diff = []
            for r in sel:
                b, e = num(r.get("all_writers_back_s")), num(r.get("election_s"))
                diff.append("-" if b is None or e is None else f"{b - e:+.2f}")
            print("| " + " | ".join([
                LABEL.get(k, k), event, str(len(sel)), j("election_s"), j("all_writers_back_s"), " / ".join(diff),
                j("failed_writes"), j("readonly_refusals"), j("lost_acked"), j("max_write_stall_s"),
                j("checks_steady_per_s", "{:.1f}"), j("checks_event_per_s", "{:.1f}"), j("checks_peak_1s"),
            ]) + " |")


if __name__ == "__main__":
    main()
