#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `source scripts/postgres.sh; pg_test_start` installs
# PostgreSQL with apt-get if missing, runs initdb in a temporary folder, starts the server on a
# free port of 127.0.0.1 (as the `postgres` user when run as root: PostgreSQL refuses root) and
# exports ISCC_REGISTRY_TEST_PG_URL; `pg_test_stop` stops it and deletes the folder.

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_test_start() {
  if [ -z "$(pg_bin_dir)" ]; then
    echo "[postgres] installing PostgreSQL"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  local bin
  bin=$(pg_bin_dir)
  PG_TEST_DIR=$(mktemp -d /tmp/iscc-registry-pg.XXXXXX)
  PG_TEST_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_TEST_DIR"
    PG_TEST_AS=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${PG_TEST_AS[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U registry -A trust -E UTF8 \
    --no-sync >/dev/null
  # fsync off: a throwaway test server need not survive a power cut, and tests run faster.
  "${PG_TEST_AS[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TEST_DIR -c fsync=off" start >/dev/null
  PG_TEST_BIN=$bin
  export ISCC_REGISTRY_TEST_PG_URL="postgresql://registry@127.0.0.1:$port/postgres"
  echo "[postgres] test server at $ISCC_REGISTRY_TEST_PG_URL"
}

pg_test_stop() {
  if [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR" ]; then
    "${PG_TEST_AS[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_DIR"
  fi
}
