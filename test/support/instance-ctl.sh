#!/bin/sh
# Stops or starts one instance of a test cluster as `[restore] stop_command` / `start_command`
# would a systemd unit: `instance-ctl.sh stop|start <root> <port>`, where the file <root>/<port>
# names the instance's directory (mysql.sock, mariadbd.pid, data/). `stop` keeps the mariadbd
# command line for `start`, which starts it again detached, on the same datadir and port, and
# records its pid in harness.pid so the cluster's watchdog kills it should the test die.
set -eu
verb=$1
dir=$(cat "$2/$3")
case "$verb" in
stop)
  pid=$(cat "$dir/mariadbd.pid")
  tr '\0' '\n' <"/proc/$pid/cmdline" >"$dir/restart.args"
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 600 ] && { echo "mariadbd $pid did not stop" >&2; exit 1; }
    sleep 0.1
  done
  ;;
start)
  # One argument per line (no argument of a harness mariadbd holds a newline).
  set --
  while IFS= read -r a; do set -- "$@" "$a"; done <"$dir/restart.args"
  setsid "$@" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/harness.pid"
  ;;
*)
  echo "usage: instance-ctl.sh stop|start <root> <port>" >&2
  exit 2
  ;;
esac
