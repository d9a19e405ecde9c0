#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser/) when it is missing.
# Playwright drives /usr/bin/chromium; its own browser downloads are never used.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
install=(apt-get install -y -qq --no-install-recommends chromium)
if [ "$(id -u)" = 0 ]; then
  echo "installing chromium with apt-get (browser tests)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "installing chromium with sudo apt-get (browser tests)" >&2
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
else
  echo "chromium is missing and cannot be installed without root: run 'sudo apt-get install chromium'" >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after apt-get" >&2; exit 1; }
