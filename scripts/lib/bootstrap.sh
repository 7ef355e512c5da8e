# Shared by scripts/run and scripts/test: make .venv hold exactly the pinned packages for an extra.
# Idempotent: a stamp of setup.cfg + constraints.txt + the extra skips pip when nothing changed.
# shellcheck shell=bash

FACEGATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$FACEGATE_ROOT/.venv"

say() { printf 'facegate: %s\n' "$*" >&2; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  # Install Debian packages when root and they are missing; otherwise say what is needed.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_root && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    return 1
  fi
}

pick_python() {
  local py
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  say "Python 3.11 or newer is required"; return 1
}

ensure_venv() {
  # $1: the setup.cfg extra to install ("" for the runtime only)
  local extra="$1" py stamp want
  py=$(pick_python)
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
      apt_install python3-venv
    fi
    say "creating $VENV"
    "$py" -m venv "$VENV"
  fi
  if [ "$extra" = test ] || [ "$extra" = systemd ]; then
    # systemd-python is built from source: it needs a compiler, the Python headers and libsystemd.
    local pkgs=(gcc pkg-config libsystemd-dev)
    "$VENV/bin/python" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || pkgs+=(python3-dev)
    "$VENV/bin/python" -c 'import systemd.daemon' 2>/dev/null || apt_install "${pkgs[@]}"
  fi
  if [ "$extra" = test ]; then
    # The MQTT tests start a real broker, Debian's mosquitto (they are skipped, saying so, without it).
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto || true
  fi
  want=$(cat "$FACEGATE_ROOT/setup.cfg" "$FACEGATE_ROOT/constraints.txt" | sha256sum | cut -c1-16)
  stamp="$VENV/.facegate-installed-${extra:-runtime}"
  # The test extra includes the runtime, so a venv set up for tests also serves scripts/run.
  local candidates=("$stamp") done
  [ -z "$extra" ] && candidates+=("$VENV/.facegate-installed-test")
  for done in "${candidates[@]}"; do
    if [ -f "$done" ] && [ "$(cat "$done")" = "$want" ]; then
      return 0
    fi
  done
  say "installing Python packages into $VENV (pinned by constraints.txt)"
  local target="$FACEGATE_ROOT"
  [ -n "$extra" ] && target="$FACEGATE_ROOT[$extra]"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$FACEGATE_ROOT/constraints.txt" -e "$target"
  echo "$want" > "$stamp"
}
