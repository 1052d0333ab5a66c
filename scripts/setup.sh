#!/usr/bin/env bash
# Install everything the registry needs into this checkout: a Python venv (.venv) with the
# package and its test tools, the npm packages (Hardhat 3, solc, OpenZeppelin, Node 22), and
# the compiled contract. Safe to run again; only missing pieces are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

apt_install() {
  log "installing Debian packages: $*"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Python >= 3.11 with venv.
if ! python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  apt_install python3 python3-venv python3-pip
fi
# Node.js and npm: any version will do to fetch Node 22 from npm (Hardhat 3 needs >= 22.13).
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi

# Debian's Chromium for the browser tests (tests/web): Playwright drives it and never
# downloads a browser of its own.
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
log "installing the Python package and test tools"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

log "installing npm packages"
npm install --no-audit --no-fund --loglevel=error
# Under an older system Node, npm skips Hardhat's native EDR package (it requires Node >= 22);
# a second pass with the Node 22 that npm just installed gets it.
PATH="$PWD/node_modules/.bin:$PATH" npm install --no-audit --no-fund --loglevel=error
node_version=$(node_modules/.bin/node --version)
case "$node_version" in
  v22.*|v23.*|v24.*) ;;
  *) echo "setup: node_modules/.bin/node is $node_version, Hardhat 3 needs >= 22.13" >&2; exit 1 ;;
esac

# anvil (the tests' second node) comes as a binary inside the npm package for this platform
# (@foundry-rs/anvil-linux-amd64 ...); its install script only falls back to the npm registry.
anvil_bin=$(ls node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n 1 || true)
if [ -z "$anvil_bin" ] || ! "$anvil_bin" --version >/dev/null; then
  echo "setup: anvil from npm (@foundry-rs/anvil) is missing or does not run" >&2
  exit 1
fi

log "compiling contracts with Hardhat (solc from npm, nothing downloaded)"
PATH="$PWD/node_modules/.bin:$PATH" npx --no-install hardhat compile
log "ready: .venv/bin/iscc-registry --help"
