#!/usr/bin/env bash
# Starts a private PostgreSQL 15 cluster on 127.0.0.1:55432 for the tests (no edits under /etc),
# installing Debian's package first if it is missing. Prints the connection URL.
set -euo pipefail
PGBIN=/usr/lib/postgresql/15/bin
if [[ ! -x $PGBIN/initdb ]]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15) >&2
fi
PGDIR=${PGDIR:-/tmp/mlship-pg}
PORT=${PGPORT:-55432}
if ! su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDIR/data status" >/dev/null 2>&1; then
  rm -rf "$PGDIR" && mkdir -p "$PGDIR" && chown postgres "$PGDIR"
  su postgres -s /bin/sh -c "$PGBIN/initdb -D $PGDIR/data -U postgres --auth=trust -E UTF8" >/dev/null
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDIR/data -o '-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1' -l $PGDIR/log -w start" >/dev/null
fi
psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'mlship_test'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE mlship_test" >&2
echo "postgres://postgres@127.0.0.1:$PORT/mlship_test"
