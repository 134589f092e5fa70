#!/usr/bin/env bash
# The integration tests start their own throwaway redis-server and PostgreSQL servers on loopback
# (free ports, temporary data folders). This makes sure the binaries are installed: with apt-get
# when they are missing and we may (root), or with a clear message saying what to install.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing ${missing[*]} for the integration tests (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  exit 0
fi
echo "The integration tests need: ${missing[*]} (Debian: sudo apt-get install ${missing[*]})" >&2
exit 1
