#!/usr/bin/env bash
# Installs what the tests start themselves (redis-server for the private restart tests).
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing redis-server with apt-get (tests start private Redis servers)" >&2
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing: tests that restart Redis will skip (sudo apt-get install redis-server)" >&2
  fi
fi
