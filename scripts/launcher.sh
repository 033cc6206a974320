#!/bin/sh
# spiderbackup: runs the Node.js bundled in this release on the bundled CLI. No system Node, no
# registry. Installed as <release>/bin/spiderbackup by `npm run package` (scripts/package.ts).
#
# Works through symlinks (/usr/bin/spiderbackup -> /opt/spiderbackup/current/bin/spiderbackup) and
# resolves them to the physical release directory (/opt/spiderbackup/<version>): the daemon and the
# supervisors it starts (on process.execPath, i.e. this node) name that version's files, so they
# keep running on them after /opt/spiderbackup/current is switched to another version.
set -eu
unset CDPATH

self=$0
while [ -L "$self" ]; do
  link=$(readlink -- "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname -- "$self")/$link ;;
  esac
done
root=$(cd -P -- "$(dirname -- "$self")/.." && pwd -P)

exec "$root/node/bin/node" "$root/dist/src/bin/cli.js" "$@"
