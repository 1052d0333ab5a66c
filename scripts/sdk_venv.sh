#!/usr/bin/env bash
# Reference toolchain for the differential tests (tests/iscc/test_reference.py): a separate venv
# .venv-sdk with iscc-sdk 0.9.7, kept between runs. iscc-sdk would download its own ffmpeg,
# ffprobe and fpcalc; none of that is reachable here, so its tool folder gets local binaries:
# the ffmpeg that imageio-ffmpeg ships (the one our code runs), Debian's ffprobe and Debian's
# fpcalc (libchromaprint-tools). Prints the interpreter wrapper to use as ISCC_SDK_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-sdk
SDK_VERSION=0.9.7
AV_VERSION=18.1.0
log() { printf '\033[1;34m[sdk]\033[0m %s\n' "$*" >&2; }

missing=()
command -v fpcalc >/dev/null 2>&1 || missing+=(libchromaprint-tools)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
[ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || ldconfig -p | grep -q libmagic.so.1 || missing+=(libmagic1)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('iscc-sdk') != '$SDK_VERSION')" 2>/dev/null; then
  log "creating $VENV with iscc-sdk==$SDK_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "iscc-sdk==$SDK_VERSION" >&2
fi
# PyAV 18.1 bundles FFmpeg 8.0, the FFmpeg of the fpcalc iscc-sdk downloads.
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('av') != '$AV_VERSION')" 2>/dev/null; then
  log "installing av==$AV_VERSION into $VENV"
  "$VENV/bin/python" -m pip install -q "av==$AV_VERSION" >&2
fi

# iscc-sdk looks for its tools under platformdirs' user data dir, which follows XDG_DATA_HOME.
tools="$PWD/$VENV/share/iscc-sdk"
mkdir -p "$tools"
ln -sf "$(.venv/bin/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" "$tools/ffmpeg-8.1"
ln -sf "$(command -v ffprobe)" "$tools/ffprobe-8.1"
# iscc-sdk 0.9.7 runs fpcalc 1.6.0, a static build on FFmpeg 8.0; Debian has 1.5.1 on FFmpeg 5.1,
# whose resampler rounds differently. scripts/reference_fpcalc.py resamples with the FFmpeg 8
# that PyAV bundles and lets Debian's fpcalc fingerprint the result (see its docstring).
cat > "$tools/fpcalc-1.6.0" <<WRAP
#!/usr/bin/env bash
exec "$PWD/$VENV/bin/python" "$PWD/scripts/reference_fpcalc.py" "\$@"
WRAP
chmod +x "$tools/fpcalc-1.6.0"

cat > "$VENV/bin/sdk-python" <<WRAP
#!/usr/bin/env bash
export XDG_DATA_HOME="$PWD/$VENV/share"
exec "$PWD/$VENV/bin/python" "\$@"
WRAP
chmod +x "$VENV/bin/sdk-python"
echo "$PWD/$VENV/bin/sdk-python"
