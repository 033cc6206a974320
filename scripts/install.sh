#!/usr/bin/env bash
# Installs everything spiderbackup and its test suite need on Debian 12, as root.
# Idempotent: when everything is present it only runs `npm ci` (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

# procps: ps, used by ps-list and tree-kill. logrotate: the log rotation test runs the real one.
# (The unit-file test uses systemd-analyze when present.)
packages=(mariadb-server mariadb-plugin-spider procps logrotate)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The tests start their own private mariadbd instances; the packaged service is not needed.
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
