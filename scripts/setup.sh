#!/usr/bin/env bash
# Install everything the registry needs into this checkout: a Python venv (.venv) with the
# package and its test tools, the npm packages (Hardhat 3, solc, OpenZeppelin, Node 22), and
# the compiled contract. Safe to run again; only missing pieces are installed, and a run that
# finds everything in place prints nothing.
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

# What an install was made from: a checkout whose inputs still hash the same needs none.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
python_stamp="$(stamp_of pyproject.toml) $(.venv/bin/python --version)"
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$python_stamp" ]; then
  log "installing the Python package and test tools"
  .venv/bin/python -m pip install -q --upgrade pip
  # setuptools boxes a notice about editable installs into every install's output; it says
  # nothing about this project (whose package folder is meant to be the one imported).
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e '.[test]'
  echo "$python_stamp" > .venv/.setup-stamp
fi

node22() {
  case "$(node_modules/.bin/node --version 2>/dev/null)" in
    v22.*|v23.*|v24.*) return 0 ;;
    *) return 1 ;;
  esac
}
npm_stamp=$(stamp_of package.json package-lock.json)
if ! node22 || [ "$(cat node_modules/.setup-stamp 2>/dev/null)" != "$npm_stamp" ]; then
  log "installing npm packages"
  if ! node22; then
    # The system Node fetches Node 22 (the npm package "node"). It skips Hardhat's native EDR
    # package, which requires Node >= 22: the pass below, under Node 22, gets it.
    npm install --no-audit --no-fund --loglevel=error >/dev/null
  fi
  PATH="$PWD/node_modules/.bin:$PATH" npm install --no-audit --no-fund --loglevel=error >/dev/null
  if ! node22; then
    echo "setup: node_modules/.bin/node is $(node_modules/.bin/node --version)," \
      "Hardhat 3 needs >= 22.13" >&2
    exit 1
  fi
  # Hashed after the install: npm under Node 22 is what writes the lock file.
  stamp_of package.json package-lock.json > node_modules/.setup-stamp
fi

# anvil (the tests' second node) comes as a binary inside the npm package for this platform
# (@foundry-rs/anvil-linux-amd64 ...); its install script only falls back to the npm registry.
anvil_bin=$(ls node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n 1 || true)
if [ -z "$anvil_bin" ] || ! "$anvil_bin" --version >/dev/null; then
  echo "setup: anvil from npm (@foundry-rs/anvil) is missing or does not run" >&2
  exit 1
fi

artifact=artifacts/contracts/IsccRegistry.sol/IsccRegistry.json
if [ ! -f "$artifact" ] || [ -n "$(find contracts hardhat.config.js -newer "$artifact" -print -quit)" ]; then
  log "compiling contracts with Hardhat (solc from npm, nothing downloaded)"
  PATH="$PWD/node_modules/.bin:$PATH" npx --no-install hardhat compile
  # Hardhat leaves an artifact alone when its own contract did not change (a new contract
  # beside it, a touched file): mark the check done, or every later setup would compile again.
  touch "$artifact"
  log "ready: .venv/bin/iscc-registry --help"
fi
