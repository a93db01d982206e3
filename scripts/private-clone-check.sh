#!/usr/bin/env bash
# A clone of this repository in a private directory (under a fresh 0700 parent, like /root) must
# start with `npm start` and pass `npm test -- test/unit`, as root and as a normal user
# (docs/database.md, "As root"). CI runs this; it takes about a minute. Needs root.
#
# To save time the clones reuse this checkout's installed packages and build: node_modules is
# hard-linked (cp -al; a real copy across file systems), and dist/ is copied. npm start rebuilds
# in the clone anyway if dist/ is not a build of the committed sources (scripts/build.mjs).
# Nothing in the checkout is written to; the clones, and the data directory the root hub makes in
# /var/lib/taskhub/data, are removed at the end. The binaries it links into
# /var/lib/taskhub/pg-<version>-<checksum> stay: every later root start reuses them.
#
#   bash scripts/private-clone-check.sh        CHECK_USER=<name> for another normal user (default nobody)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
user=${CHECK_USER:-nobody}
[ "$(id -u)" = 0 ] || { echo "private-clone-check: needs root (it runs the hub as root and as $user)" >&2; exit 1; }
[ -d "$repo/node_modules" ] || { echo "private-clone-check: run npm ci first" >&2; exit 1; }

work=$(mktemp -d /tmp/taskhub-private-check.XXXXXX)
chmod 711 "$work" # the private parents are root/ (root's) and user/ ($user's) in it, both 0700
hub_pgid=''
state_data=''
cleanup() {
  [ -n "$hub_pgid" ] && kill -TERM -- "-$hub_pgid" 2>/dev/null || true
  [ -n "$state_data" ] && rm -rf "$state_data"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$SECONDS
say() { printf '[private-clone-check %3ss] %s\n' "$((SECONDS - started))" "$*"; }

# clone <dir> <owner>: the repository at HEAD, this checkout's packages and build, owned by <owner>.
clone() {
  local dir=$1 owner=$2
  git clone -q --no-hardlinks "$repo" "$dir"
  [ "$owner" = root ] || chown -R "$owner:" "$dir"
  cp -al "$repo/node_modules" "$dir/node_modules" 2>/dev/null || cp -a "$repo/node_modules" "$dir/node_modules"
  rm -rf "$dir/node_modules/.cache"
  # Directories are new in the copy (only files are links): the owner may create files in them.
  [ "$owner" = root ] || find "$dir/node_modules" -type d -exec chown "$owner:" {} +
  if [ -f "$repo/dist/.build-stamp.json" ]; then
    cp -a "$repo/dist" "$dir/dist"
    [ "$owner" = root ] || chown -R "$owner:" "$dir/dist"
  fi
}

# Runs a command as $user: setpriv execs it (runuser and su stay as its parent, and SIGKILL it 2 s
# after a SIGTERM, before the hub has stopped its server).
as_user=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups)

# hub <owner> <log> <port>: `npm start` in the current directory as that user (root: as is), in a
# process group of its own (setsid: its pid is the group's id), with a HOME of its own.
hub() {
  local owner=$1 log=$2 port=$3
  if [ "$owner" = root ]; then
    HOME="$work/home-root" PORT="$port" HOST=127.0.0.1 setsid npm start >"$log" 2>&1 &
  else
    setsid "${as_user[@]}" env HOME="$work/home-$owner" PORT="$port" HOST=127.0.0.1 npm start >"$log" 2>&1 &
  fi
  hub_pgid=$!
  # setsid made it a group leader in place; never our own group (a kill would stop this script)
  [ "$hub_pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || { echo "private-clone-check: no process group for the hub" >&2; exit 1; }
}

# unit_tests <owner> <log>: `npm test -- test/unit` in the current directory as that user.
unit_tests() {
  local owner=$1 log=$2
  if [ "$owner" = root ]; then
    HOME="$work/home-root" npm test -- test/unit --ci >"$log" 2>&1
  else
    "${as_user[@]}" env HOME="$work/home-$owner" npm test -- test/unit --ci >"$log" 2>&1
  fi || { tail -40 "$log" >&2; exit 1; }
}

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# start_hub <dir> <owner> <log>: npm start in <dir>, waits for /healthz; sets hub_pgid, port.
start_hub() {
  local dir=$1 owner=$2 log=$3
  port=$(free_port)
  cd "$dir"
  hub "$owner" "$log" "$port"
  cd "$repo"
  for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 -- "-$hub_pgid" 2>/dev/null || break
    sleep 0.1
  done
  echo "private-clone-check: the hub in $dir did not answer /healthz:" >&2
  tail -30 "$log" >&2
  exit 1
}

# stop_hub <dir> <log>: SIGTERM to the hub's group; the hub stops its server (which runs in a group of its own).
stop_hub() {
  kill -TERM -- "-$hub_pgid"
  for _ in $(seq 1 300); do
    if ! kill -0 -- "-$hub_pgid" 2>/dev/null && [ ! -e "$1/data/pg/postmaster.pid" ]; then
      hub_pgid=''
      return 0
    fi
    sleep 0.1
  done
  echo "private-clone-check: the hub or its server did not stop:" >&2
  ps -o pid,pgid,user,args -g "$hub_pgid" >&2 || true
  tail -20 "$2" >&2
  exit 1
}

# The user that runs the embedded server: the owner of the postmaster.pid's process.
server_user() { ps -o user= -p "$(head -1 "$1/data/pg/postmaster.pid")" | tr -d ' '; }

mkdir -m 700 "$work/home-root" "$work/root"
mkdir -m 700 "$work/user" "$work/home-$user"
chown "$user:" "$work/user" "$work/home-$user"

say "root: clone under $work/root (0700)"
clone "$work/root/taskhub" root
start_hub "$work/root/taskhub" root "$work/root-hub.log"
dir=$work/root/taskhub
state_data=$(dirname "$(readlink "$dir/data/pg")")
[ "$(server_user "$dir")" = postgres ] || { echo "private-clone-check: the server does not run as postgres" >&2; exit 1; }
grep -q "so it runs from /" "$work/root-hub.log" || { echo "private-clone-check: no note of the binaries' place" >&2; exit 1; }
grep -q "its data directory is $state_data/pg, linked from $dir/data/pg" "$work/root-hub.log" || {
  echo "private-clone-check: no warning about the data directory's place" >&2
  exit 1
}
say "root: npm start answered /healthz on port $port; server as postgres, binaries and data in /var/lib/taskhub (linked from data/pg)"
stop_hub "$dir" "$work/root-hub.log"
say "root: stopped, and its server"
(cd "$dir" && unit_tests root "$work/root-test.log")
say "root: npm test -- test/unit passed ($(grep -o 'Tests: .*' "$work/root-test.log"))"

say "$user: clone under $work/user (0700, $user's)"
clone "$work/user/taskhub" "$user"
dir=$work/user/taskhub
start_hub "$dir" "$user" "$work/user-hub.log"
[ ! -L "$dir/data/pg" ] && [ "$(server_user "$dir")" = "$user" ] || {
  echo "private-clone-check: as $user, the server should run as $user from $dir/data/pg" >&2
  exit 1
}
say "$user: npm start answered /healthz on port $port; server as $user, data in data/pg"
stop_hub "$dir" "$work/user-hub.log"
(cd "$dir" && unit_tests "$user" "$work/user-test.log")
say "$user: npm test -- test/unit passed ($(grep -o 'Tests: .*' "$work/user-test.log"))"
say "ok"
