"""Client-side load for test_vip.py, run inside the client namespace (`ip netns exec ... python3
vip_load.py OUT HOST WRITE_PORT RUN WRITERS`): WRITERS writers, each one INSERT per 100 ms on a new
connection through HOST:WRITE_PORT (the VIP), and one prober doing a bare TCP connect to the same
address every 20 ms. Writers use libpq connect_timeout=15 as test_real_cluster.py's, so a client held
in gproxy's queue during an election (or a SYN retransmitted across the VIP move) shows as a slow
write, not an error. One JSON line per attempt in OUT (flushed at once), so the harness reads what
happened even after a SIGTERM:

    {"w": 0, "k": "run:0:17", "t0": ..., "t1": ..., "ok": true, "port": 5433}    # port: inet_server_port()
    {"w": 1, "k": "run:1:18", "t0": ..., "t1": ..., "ok": false, "err": "..."}
    {"probe": true, "t0": ..., "t1": ..., "ok": true}
"""
from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time

import psycopg2

stop = threading.Event()
lock = threading.Lock()


def main(out_path: str, host: str, port: int, run: str, writers: int) -> None:
    out = open(out_path, "a", buffering=1)

    def emit(rec: dict) -> None:
        with lock:
            out.write(json.dumps(rec) + "\n")

    def writer(w: int) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            key = f"{run}:{w}:{seq}"
            t0 = time.time()
            rec = {"w": w, "k": key, "t0": t0}
            try:
                conn = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=15,
                                        options="-c statement_timeout=3000")
                conn.autocommit = True
                try:
                    with conn.cursor() as cur:
                        cur.execute("INSERT INTO vip_writes (k) VALUES (%s) RETURNING inet_server_port()", (key,))
                        rec["port"] = cur.fetchone()[0]
                finally:
                    conn.close()
                rec["ok"] = True
            except Exception as e:  # noqa: BLE001
                rec["ok"] = False
                rec["err"] = str(e).strip().replace("\n", " ")[:200]
            rec["t1"] = time.time()
            emit(rec)
            stop.wait(max(0.0, 0.1 - (time.time() - t0)))

    def prober() -> None:
        while not stop.is_set():
            t0 = time.time()
            ok = True
            try:
                socket.create_connection((host, port), timeout=0.2).close()
            except OSError:
                ok = False
            emit({"probe": True, "t0": t0, "t1": time.time(), "ok": ok})
            stop.wait(max(0.0, 0.02 - (time.time() - t0)))

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    threads.append(threading.Thread(target=prober, daemon=True))
    for t in threads:
        t.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.2)
    for t in threads:
        t.join(5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
