#!/usr/bin/env bash
# Idempotent environment set-up for perception (DESIGN.md §2).
#
# Creates (or reuses) a virtual environment outside the clone, default ~/.venvs/perception
# (override with PERCEPTION_VENV), builds mmcv 2.1.0 with its ops once per machine (the wheel is
# cached in ~/.cache/perception/wheels, override with PERCEPTION_WHEEL_CACHE), installs the pinned
# OpenMMLab stack and finally `pip install -e .`, which compiles perception._ext from csrc/.
# A second run on a ready machine only re-checks the stamp and rebuilds the extension if needed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PERCEPTION_VENV:-$HOME/.venvs/perception}"
WHEELS="${PERCEPTION_WHEEL_CACHE:-$HOME/.cache/perception/wheels}"
PY_BASE="${PERCEPTION_PYTHON:-python3.11}"
PIP_OPTS=(-q --disable-pip-version-check)
[ -d /opt/wheels ] && PIP_OPTS+=(--find-links /opt/wheels)

log() { printf '[setup_env] %s\n' "$*" >&2; }

# open3d needs libusb at import time.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  log "installing the Debian package libusb-1.0-0 (open3d needs it)"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libusb-1.0-0 >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the virtual environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY_BASE" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip)

# The stamp covers the requirement files and this script: when none changed, the third-party
# stack is known to be complete and only the editable install is checked.
STAMP="$VENV/.perception-stack"
WANT="$(cat "$ROOT"/requirements/*.txt "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  log "installing torch 2.13.0 and the build requirements"
  "${PIP[@]}" install "${PIP_OPTS[@]}" torch==2.13.0 wheel ninja 'numpy<2'
  # mmcv 2.1.0's setup.py needs pkg_resources and an old setuptools; torch declares
  # setuptools>=77 only for its own cpp_extension helpers, which work with 69 as well.
  "${PIP[@]}" install "${PIP_OPTS[@]}" 'setuptools<70' 2>&1 | grep -v "dependency conflicts\|requires setuptools\|resolver does not" || true

  mkdir -p "$WHEELS"
  MMCV_WHL="$(ls "$WHEELS"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$MMCV_WHL" ]; then
    log "building mmcv 2.1.0 with its ops from source (about 13 minutes on 2 cores, once per machine)"
    MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "${PIP[@]}" wheel "${PIP_OPTS[@]}" --no-build-isolation --no-deps \
      -w "$WHEELS" mmcv==2.1.0
    MMCV_WHL="$(ls "$WHEELS"/mmcv-2.1.0-*.whl | head -n1)"
  fi
  # diffusers/transformers (requirements/optional.txt) come only now that the mmcv wheel exists: the
  # setuptools they may pull has no pkg_resources, which mmcv's build needs.
  log "installing the pinned OpenMMLab stack and the diffusion-model libraries"
  "${PIP[@]}" install "${PIP_OPTS[@]}" "$MMCV_WHL" -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/optional.txt"
  # pip may have pulled a newer setuptools back in through a dependency: keep the build one.
  "${PIP[@]}" install "${PIP_OPTS[@]}" 'setuptools<70' 2>&1 | grep -v "dependency conflicts\|requires setuptools\|resolver does not" || true
  echo "$WANT" > "$STAMP"
fi

# perception._ext: rebuilt by pip only when the sources changed (setup.py compares timestamps via ninja).
if ! (cd /tmp && "$PY" -c "import perception, perception._ext, os, sys; sys.exit(0 if os.path.realpath(os.path.dirname(perception.__file__)) == os.path.realpath('$ROOT/perception') else 1)") 2>/dev/null \
   || [ -n "$(find "$ROOT/csrc" "$ROOT/setup.py" -newer "$VENV/.perception-ext" 2>/dev/null | head -n1)" ] \
   || [ ! -e "$VENV/.perception-ext" ]; then
  log "building perception._ext (pip install -e .)"
  (cd "$ROOT" && MAX_JOBS="$(nproc)" "${PIP[@]}" install "${PIP_OPTS[@]}" --no-build-isolation --no-deps -e .)
  touch "$VENV/.perception-ext"
fi
log "ready: $VENV"
