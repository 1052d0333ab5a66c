#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the end-to-end demo: a fresh devnet, the
# registry deployed, the bundled samples declared by two keys, indexed and resolved; then an
# exclusive licence, an overlapping one, their conflict's case, resolved by a termination.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/iscc-registry demo "$@"
