#!/usr/bin/env bash
# Installs everything spiderbackup and its test suite need on Debian 12, as root.
# Idempotent: when everything is present it only runs `npm ci` (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

# util-linux: flock(1), which holds the host and daemon locks (and unshare/mount for the release
# test). systemd: systemd-analyze and systemd-tmpfiles judge the unit and the tmpfiles entry.
# logrotate: the log rotation tests run the real one. procps: ps, for operators and debugging.
# prometheus: promtool, which judges /metrics and the example alert rules in the tests.
# mariadb-client: mariadb-dump and mariadb (the sandbox's and the runners' backups, restores).
# mariadb-backup (with mbstream) and zstd: the built-in backup runners and `verify --restore-test`
# (README "Backup runners"). bsdutils: script(1), a real terminal for the CLI tests. faketime:
# libfaketime moves a test daemon's clock (presence ages must follow the database clock).
# swift (proxy, account, container, object) and memcached: a real S3-compatible store (OpenStack
# Swift's s3api, which checks SigV4 signatures) for the S3 repository tests and benches
# (test/support/swift.ts); not needed by the agent itself.
packages=(
  mariadb-server mariadb-plugin-spider
  util-linux mount systemd procps logrotate
  prometheus
  mariadb-client mariadb-backup zstd bsdutils faketime
  swift swift-proxy swift-account swift-container swift-object python3-swift memcached
)
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
