#!/usr/bin/env python3
"""maxconn / queue stress: N concurrent clients through a seed-like listen (4 echo servers, maxconn 100).

Each client connects, sends a random payload (1-8 KB, --payload), reads it back through the proxy,
checks it byte for byte, holds the session 50-200 ms and closes. 400 sessions are served at a time;
the rest wait in the proxy's backend queue (timeout queue 60s, timeout connect 5s).

"Client-observed time in queue" starts when the client's connect() completes (the kernel finishes
the handshake even before the proxy accepts). With 10,000 clients the single Python event loop is
itself saturated for ~2 s while it issues the connects, so the connect() and client-side queue
figures include client loop lag. The proxy-side figure is each proxy's own `option tcplog` %Tw,
sent to a UDP syslog sink (perf/syslog_sink.py); prefer it.

Reports per proxy: served / lost / corrupted, peak backend queue (stats CSV qcur sampled every 50 ms
and qmax), client-observed time in queue (connect -> first echoed byte) p50/p99, wall time, peak RSS
(VmHWM) of the proxy, and the highest concurrency each echo server saw (should stay <= 100, modulo
the close/accept race of a freed slot).

    python3 perf/maxconn_stress.py [--clients 10000] [--proxy gproxy|haproxy|both] [--check] [--json FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402

SERVER_MAXCONN = 100
N_SERVERS = 4


async def one_client(i: int, port: int, rng: random.Random, res: list, hold: tuple[float, float], deadline: float,
                     size: tuple[int, int] = (1024, 8192)):
    payload = rng.randbytes(rng.randint(*size))
    rec = {"ok": False, "corrupt": False, "err": None, "queue_s": None}
    t_start = time.monotonic()
    writer = None
    send = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), deadline)
        t_conn = time.monotonic()
        rec["connect_s"] = t_conn - t_start
        # Write concurrently with reading: a payload larger than the socket buffers would otherwise
        # deadlock against the echo.
        send = asyncio.ensure_future(_send(writer, payload))
        got = bytearray()
        first = await asyncio.wait_for(reader.read(65536), deadline)
        if not first:
            raise ConnectionError("EOF before any echoed byte")
        rec["queue_s"] = time.monotonic() - t_conn
        got += first
        while len(got) < len(payload):
            chunk = await asyncio.wait_for(reader.read(65536), deadline)
            if not chunk:
                raise ConnectionError(f"EOF after {len(got)}/{len(payload)} bytes")
            got += chunk
        await send
        if bytes(got[:len(payload)]) != payload or len(got) != len(payload):
            rec["corrupt"] = True
        else:
            rec["ok"] = True
        await asyncio.sleep(rng.uniform(*hold))
    except Exception as e:  # noqa: BLE001 -- every failure is a "lost" client, keep its reason
        rec["err"] = f"{type(e).__name__}: {e}"[:160]
    finally:
        if send is not None and not send.done():
            send.cancel()
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass
    rec["total_s"] = time.monotonic() - t_start
    res[i] = rec


async def _send(writer, payload: bytes):
    writer.write(payload)
    await writer.drain()


async def poll_stats(stats_port: int, backend: str, peak: dict, stop: asyncio.Event, pid: int):
    while not stop.is_set():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", stats_port), 1.0)
            w.write(b"GET /;csv HTTP/1.0\r\nHost: x\r\n\r\n")
            await w.drain()
            body = await asyncio.wait_for(r.read(), 2.0)
            w.close()
            row = _lab.backend_row(body.decode(errors="replace"), backend)
            if row:
                peak["qcur_peak"] = max(peak.get("qcur_peak", 0), row["qcur"])
                peak["qmax"] = max(peak.get("qmax", 0), row["qmax"])
                peak["scur_peak"] = max(peak.get("scur_peak", 0), row["scur"])
                peak["samples"] = peak.get("samples", 0) + 1
        except Exception as e:  # noqa: BLE001
            peak["stats_errors"] = peak.get("stats_errors", 0) + 1
            peak["stats_last_error"] = f"{type(e).__name__}: {e}"[:120]
        try:
            peak["rss_peak_kb"] = max(peak.get("rss_peak_kb", 0), _lab.rss_kb(pid))
        except OSError:
            pass
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def run_clients(n: int, port: int, stats_port: int, pid: int, seed: int, hold, deadline, size):
    rng = random.Random(seed)
    res: list = [None] * n
    peak: dict = {}
    stop = asyncio.Event()
    poller = asyncio.create_task(poll_stats(stats_port, "opengauss", peak, stop, pid))
    t0 = time.monotonic()
    await asyncio.gather(*(one_client(i, port, rng, res, hold, deadline, size) for i in range(n)))
    wall = time.monotonic() - t0
    await asyncio.sleep(0.15)  # one more stats sample after the last close
    stop.set()
    await poller
    return res, peak, wall


def stress_maxconn(n: int) -> int:
    """Global maxconn: room for every client, but haproxy refuses to start unless 2*maxconn+18 fds fit in
    RLIMIT_NOFILE (hard limit 20000 here, and raising it needs CAP_SYS_RESOURCE). Past that, the last
    clients wait in the kernel accept backlog instead of the proxy queue; they are still served."""
    return max(100, min(n + 100, (_lab.raise_nofile() - 100) // 2))


LOG_RE = re.compile(rb" opengauss (\S+)/(\S+) (-?\d+)/(-?\d+)/\+?(-?\d+) (\d+) (\S\S) ")


def parse_session_log(path: str) -> dict:
    """Proxy-side queue times from the tcplog lines (%Tw/%Tc/%Tt, termination state)."""
    tw, states, lines = [], {}, 0
    try:
        with open(path, "rb") as f:
            for line in f:
                m = LOG_RE.search(line)
                if not m:
                    continue
                lines += 1
                if int(m.group(3)) >= 0:
                    tw.append(int(m.group(3)))
                st = m.group(7).decode()
                states[st] = states.get(st, 0) + 1
    except OSError:
        pass
    return {"log_lines": lines, "log_states": states,
            "tw_p50_ms": _lab.percentile(tw, 50), "tw_p99_ms": _lab.percentile(tw, 99),
            "tw_max_ms": max(tw) if tw else None, "tw_queued": sum(1 for x in tw if x > 0)}


def stress_one(lab: _lab.Lab, kind: str, n: int, nbthread: int, seed: int, hold, deadline,
               proxy_log: bool = True, size: tuple[int, int] = (1024, 8192)) -> dict:
    eports = [_lab.free_port() for _ in range(N_SERVERS)]
    port, stats_port = _lab.free_port(), _lab.free_port()
    sink = None
    logfile = lab.path(f"sessions-{kind}.log")
    extra_global, lines, options = [], [], []
    if proxy_log:
        lport = _lab.free_port()
        sink = lab.start(f"syslog-{kind}", [sys.executable, os.path.join(_lab.HERE, "syslog_sink.py"),
                                            "--port", str(lport), "--out", logfile])
        extra_global, lines, options = [f"log 127.0.0.1:{lport} local0"], ["log global"], ["tcplog"]
    estats = lab.path(f"echo-{kind}.json")
    echo = lab.start(f"echo-{kind}", [sys.executable, os.path.join(_lab.HERE, "echo_server.py"),
                                      "--ports", ",".join(map(str, eports)), "--stats", estats])
    proxy = None
    try:
        for p in eports:
            _lab.wait_port(p, proc=echo)
        cfg = _lab.proxy_cfg([{"name": "opengauss", "port": port, "options": options, "lines": lines,
                               "servers": [(f"pg{i + 1}", p, SERVER_MAXCONN) for i, p in enumerate(eports)]}],
                             nbthread=nbthread, maxconn=stress_maxconn(n), stats_port=stats_port,
                             timeout_queue="60s", extra_global=extra_global)
        cfg_path = lab.write(f"stress-{kind}.cfg", cfg)
        _lab.check_cfg(kind, cfg_path)
        argv = _lab.proxy_argv(kind, cfg_path)
        proxy = lab.start(kind, argv)
        _lab.wait_port(port, proc=proxy)
        _lab.wait_port(stats_port, proc=proxy)
        rss0 = _lab.rss_kb(proxy.pid)
        cpu0 = _lab.cpu_seconds(proxy.pid)
        res, peak, wall = asyncio.run(run_clients(n, port, stats_port, proxy.pid, seed, hold, deadline, size))
        alive = proxy.poll() is None
        cpu1 = _lab.cpu_seconds(proxy.pid) if alive else None
        hwm = _lab.hwm_kb(proxy.pid) if alive else None
        time.sleep(0.3)
        try:
            with open(estats) as f:
                es = json.load(f)
        except (OSError, ValueError):
            es = {}
    finally:
        rc = lab.stop(proxy)
        lab.stop(echo)
        if sink is not None:
            time.sleep(0.3)
            lab.stop(sink)
    plog = parse_session_log(logfile) if proxy_log else {}
    ok = [r for r in res if r and r["ok"]]
    corrupt = [r for r in res if r and r["corrupt"]]
    lost = [r for r in res if not r or (not r["ok"] and not r["corrupt"])]
    q = [r["queue_s"] for r in res if r and r["queue_s"] is not None]
    cq = [r["connect_s"] for r in res if r and r.get("connect_s") is not None]
    errs: dict = {}
    for r in lost:
        k = (r or {}).get("err") or "no result"
        k = k.split(":")[0] if k else k
        errs[k] = errs.get(k, 0) + 1
    return {
        "proxy": kind, "clients": n, "global_maxconn": stress_maxconn(n), "served": len(ok), "lost": len(lost), "corrupted": len(corrupt),
        "lost_reasons": errs, "lost_examples": [r.get("err") for r in lost[:3] if r],
        "queue_peak": max(peak.get("qcur_peak", 0), peak.get("qmax", 0)),
        "qcur_peak_sampled": peak.get("qcur_peak", 0), "qmax": peak.get("qmax", 0),
        "scur_peak": peak.get("scur_peak", 0), "stats_samples": peak.get("samples", 0),
        "stats_errors": peak.get("stats_errors", 0), "stats_last_error": peak.get("stats_last_error"),
        "queue_p50_ms": round(1000 * _lab.percentile(q, 50), 1) if q else None,
        "queue_p99_ms": round(1000 * _lab.percentile(q, 99), 1) if q else None,
        "queue_max_ms": round(1000 * max(q), 1) if q else None,
        "connect_p50_ms": round(1000 * _lab.percentile(cq, 50), 1) if cq else None,
        "connect_p99_ms": round(1000 * _lab.percentile(cq, 99), 1) if cq else None,
        "connect_max_ms": round(1000 * max(cq), 1) if cq else None,
        "connect_over_900ms": sum(1 for x in cq if x > 0.9),
        **plog,
        "wall_s": round(wall, 2),
        "rss_rest_kb": rss0, "rss_peak_kb": hwm if hwm is not None else peak.get("rss_peak_kb"),
        "cpu_s": round(cpu1 - cpu0, 2) if cpu1 is not None else None,
        "echo_max_concurrent": [v.get("max") for _, v in sorted(es.items())],
        "echo_accepted": sum(v.get("accepted", 0) for v in es.values()),
        "proxy_alive_after": alive, "proxy_exit": rc if not alive else None,
        "proxy_log_tail": lab.log(kind)[-1500:] if not alive else "",
        "repro": " ".join(argv) + f"   # cfg: {cfg_path}",
    }


def table(rows: list[dict]) -> str:
    keys = [("clients", "clients"), ("global maxconn", "global_maxconn"), ("served", "served"), ("lost", "lost"), ("corrupted", "corrupted"),
            ("queue peak (BACKEND qmax / sampled qcur)", None), ("client-observed time in queue p50 ms", "queue_p50_ms"),
            ("client-observed time in queue p99 ms", "queue_p99_ms"),
            ("client-observed time in queue max ms", "queue_max_ms"),
            ("proxy-logged queue time Tw p50 / p99 / max ms", "TW"), ("sessions logged (tcplog) / with Tw > 0", "LOGN"),
            ("connect() p50 / p99 / max ms (incl. client loop lag)", None), ("connect() > 0.9 s (client-observed)", "connect_over_900ms"),
            ("wall s (all clients)", "wall_s"), ("proxy CPU s", "cpu_s"),
            ("RSS at rest MiB", "rss_rest_kb"), ("peak RSS (VmHWM) MiB", "rss_peak_kb"),
            ("max concurrent per echo server", "echo_max_concurrent")]
    out = ["| metric | " + " | ".join(r["proxy"] for r in rows) + " |",
           "|---|" + "---|" * len(rows)]
    for label, k in keys:
        cells = []
        for r in rows:
            if k == "TW":
                cells.append(f"{r.get('tw_p50_ms')} / {r.get('tw_p99_ms')} / {r.get('tw_max_ms')}" if r.get("log_lines")
                             else "n/a")
            elif k == "LOGN":
                cells.append(f"{r.get('log_lines', 'n/a')} / {r.get('tw_queued', 'n/a')}")
            elif k is None and label.startswith("connect()"):
                cells.append(f"{r['connect_p50_ms']} / {r['connect_p99_ms']} / {r['connect_max_ms']}")
            elif k is None:
                cells.append(f"{r['qmax']} / {r['qcur_peak_sampled']}")
            elif k.endswith("_kb"):
                cells.append(f"{r[k] / 1024:.1f}" if r[k] else "n/a")
            elif isinstance(r[k], list):
                cells.append(",".join(map(str, r[k])))
            else:
                cells.append(str(r[k]))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--proxy", choices=["gproxy", "haproxy", "both"], default="both")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="nbthread for both proxies (default: cores)")
    ap.add_argument("--hold-ms", default="50,200", help="session hold range after the echo, ms (default 50,200)")
    ap.add_argument("--deadline", type=float, default=120.0, help="per-step client timeout, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--payload", default="1024,8192", help="payload size range in bytes (default 1024,8192)")
    ap.add_argument("--no-proxy-log", action="store_true",
                    help="do not enable tcplog to a UDP syslog sink (proxy-side Tw queue times)")
    ap.add_argument("--check", action="store_true", help="exit 1 unless every client was served intact")
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, logs)")
    ap.add_argument("--write", action="store_true", help="append a dated section to perf/RESULTS.md")
    a = ap.parse_args()
    limit = _lab.raise_nofile()
    if limit < a.clients + 200:
        print(f"warning: RLIMIT_NOFILE is {limit}, below clients+200", file=sys.stderr)
    hold = tuple(int(x) / 1000 for x in a.hold_ms.split(","))
    kinds = ["gproxy", "haproxy"] if a.proxy == "both" else [a.proxy]
    lab = _lab.Lab(prefix="gproxy-stress-", keep=a.keep)
    rows = []
    try:
        for k in kinds:
            print(f"[maxconn_stress] {k}: {a.clients} clients, 4 servers x maxconn {SERVER_MAXCONN} ...",
                  file=sys.stderr, flush=True)
            r = stress_one(lab, k, a.clients, a.threads, a.seed, hold, a.deadline, proxy_log=not a.no_proxy_log,
                           size=tuple(int(x) for x in a.payload.split(",")))
            rows.append(r)
            print(f"[maxconn_stress] {k}: served {r['served']} lost {r['lost']} corrupted {r['corrupted']} "
                  f"queue peak {r['queue_peak']} in {r['wall_s']} s", file=sys.stderr, flush=True)
            if r["lost"]:
                print(f"  lost reasons: {r['lost_reasons']} e.g. {r['lost_examples']}", file=sys.stderr)
            if not r["proxy_alive_after"]:
                print(f"  PROXY DIED (exit {r['proxy_exit']}); repro: {r['repro']}\n{r['proxy_log_tail']}",
                      file=sys.stderr)
    finally:
        lab.close()
    info = _lab.machine_info()
    header = (f"date {info['date']}, nproc {info['nproc']}, kernel {info['kernel']}, proxy threads {a.threads}, "
              f"loadavg {' '.join(info['loadavg'])}, hold {a.hold_ms} ms, payload {a.payload} bytes, seed {a.seed}")
    cmd = "python3 perf/maxconn_stress.py " + " ".join(sys.argv[1:])
    print(f"\nmaxconn stress: {header}\ncommand: {cmd}\n")
    print(table(rows))
    if a.write:
        path = os.path.join(_lab.HERE, "RESULTS.md")
        with open(path, "a") as f:
            if f.tell() == 0:
                f.write("# gproxy perf lab results\n")
            f.write(f"\n## maxconn stress {info['date']}\n\n- {header}\n- command: `{cmd}`\n"
                    f"- config: 4 echo servers `maxconn 100`, roundrobin, global maxconn "
                    f"{rows[0]['global_maxconn'] if rows else '?'}, timeout queue 60s, timeout connect 5s\n\n")
            f.write(table(rows) + "\n")
            for r in rows:
                if r["lost"] or r["corrupted"] or not r["proxy_alive_after"]:
                    f.write(f"\n- {r['proxy']}: lost {r['lost']} ({r['lost_reasons']}), corrupted {r['corrupted']}, "
                            f"alive after: {r['proxy_alive_after']}; repro: `{r['repro']}`\n")
        print(f"\nappended to {path}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "args": vars(a), "results": rows}, f, indent=1)
    if a.check:
        bad = [r for r in rows if r["served"] != a.clients or r["lost"] or r["corrupted"]]
        if bad:
            print("CHECK FAILED: " + "; ".join(f"{r['proxy']}: served {r['served']}/{a.clients}, lost {r['lost']}, "
                                               f"corrupted {r['corrupted']}" for r in bad), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
