#!/usr/bin/env bash
# Real-cluster integration suite: a Patroni cluster (raft DCS, PostgreSQL 15) on 127.0.0.1 behind
# gproxy and/or HAProxy with the seed haproxy.cfg. Works as root with no TTY in a fresh clone.
#
#   Tests/Integration/run.sh                       # gproxy (3 and 4 nodes) + gproxy-patroni (4 nodes)
#   INTEG_PROXIES=haproxy,gproxy,gproxy-patroni INTEG_SIZES=4 Tests/Integration/run.sh   # the README table
#   INTEG_PROXIES=haproxy INTEG_SIZES=3 Tests/Integration/run.sh -k failover
#   GPROXY_BIN=/path/to/gproxy Tests/Integration/run.sh
# Extra arguments go to pytest. Env: STRICT_READONLY=1 fails on writes refused by a read-only node;
# INTEG_KEEP_TMP=1 keeps the cluster/proxy temp dirs (logs); INTEG_VENV relocates the Patroni venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
PROXIES="${INTEG_PROXIES:-gproxy,gproxy-patroni}"
export INTEG_PROXIES="$PROXIES"

# --- system packages, only when missing
need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
# nft: test_faults.py cuts a node off with a table of its own (skipped without it)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
# haproxy: a proxy kind when asked for, and always the peer of test_migrate_from_haproxy.py.
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
    need_apt+=(haproxy)
fi
# test_vip.py: keepalived (VRRP) in network namespaces, curl for its checks, nft for the NAT to the cluster.
command -v keepalived >/dev/null || [ -x /usr/sbin/keepalived ] || need_apt+=(keepalived)
command -v curl >/dev/null || need_apt+=(curl)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -q && apt-get install -y -q "${need_apt[@]}"
fi
# Debian's postgresql package starts a 'main' cluster on 5432: we do not need it
# (our nodes use private ports); leave it alone if it was already there.
id postgres >/dev/null

# --- Python: the harness (this interpreter) needs psycopg2 + pytest; Patroni runs as `postgres`
# from a venv built with the system interpreter (/root is not readable by postgres).
PY="${PYTHON:-python3}"
"$PY" -c 'import psycopg2, pytest' 2>/dev/null || "$PY" -m pip install -q psycopg2-binary pytest
VENV="${INTEG_VENV:-/opt/gproxy-integ/venv}"
export INTEG_VENV="$VENV"
if [ ! -x "$VENV/bin/patroni" ]; then
    /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || { apt-get update -q && apt-get install -y -q python3-venv; }
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "patroni[raft]" psycopg2-binary
    chmod -R a+rX "$VENV"
fi

# --- gproxy binary
# (always: test_migrate_from_haproxy.py and the stats screenshot run gproxy whatever the kinds)
if [ -z "${GPROXY_BIN:-}" ]; then
    if [ ! -x .build/release/gproxy ]; then
        swift build -c release --static-swift-stdlib --product gproxy
    fi
    export GPROXY_BIN="$PWD/.build/release/gproxy"
fi

mkdir -p perf/out
start=$(date +%s)
rc=0
timeout --kill-after=30 1500 "$PY" -m pytest -x -q -s -p no:cacheprovider Tests/Integration "$@" || rc=$?
echo "integration suite: rc=$rc in $(( $(date +%s) - start ))s (proxies: $PROXIES)"
exit $rc
