#!/usr/bin/env bash
# Creates the virtual environment, installing Debian's venv support first when it is missing.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"
if [ -x "$venv/bin/pip" ]; then
  exit 0
fi
if ! "$python" -c "import venv, ensurepip" 2>/dev/null; then
  echo "installing python3-venv with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
