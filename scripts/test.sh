#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run all checks: ruff, lint-imports, then the whole
# pytest suite against a real Hardhat devnet, the iscc-sdk reference venv and a throwaway
# PostgreSQL server (scripts/postgres.sh). Extra arguments go to pytest. Slow benchmarks are skipped unless
# RUN_SLOW=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The differential ISCC tests compare with iscc-sdk 0.9.7 in its own venv (built once, cached).
ISCC_SDK_PYTHON=$(scripts/sdk_venv.sh)
export ISCC_SDK_PYTHON
echo "[test] ruff"
.venv/bin/ruff check registry tests scripts
echo "[test] lint-imports (the layering in pyproject.toml)"
.venv/bin/lint-imports --no-cache
markers=()
if [ "${RUN_SLOW:-0}" != "1" ]; then markers=(-m "not slow"); fi
# PostgreSQL tests need a real server: start a throwaway one unless a URL is given.
if [ -z "${ISCC_REGISTRY_TEST_PG_URL:-}" ]; then
  source scripts/postgres.sh
  pg_test_start
  trap pg_test_stop EXIT
fi
echo "[test] pytest"
.venv/bin/pytest "${markers[@]}" "$@"
