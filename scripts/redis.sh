#!/usr/bin/env bash
# Runs real Redis servers on free loopback ports for the integration tests:
# one standalone server, a 3-master Redis Cluster (no replicas, no
# persistence) and, given a TLSDIR made by lib.sh's make_certs, a standalone
# server on a TLS port that requires client certificates. The Cluster's
# nodes and the TLS server have, beside the default user (no password, every
# right), the ACL user of deploy/redis/cohortsync.acl with a random password
# (kept in STATEDIR/acl/acl-password; the ACL file holds its SHA-256).
#
#   redis.sh install                 apt-get install redis-server if it is missing
#   redis.sh start STATEDIR [TLSDIR] start them, print REDIS_URL=..., REDIS_CLUSTER_ADDRS=...,
#                                    REDIS_ACL_USER=..., REDIS_ACL_PASSWORD=... and,
#                                    with TLSDIR, REDIS_TLS_URL=rediss://...
#   redis.sh stop STATEDIR      shut them all down
#
# Each server has its own directory in STATEDIR (pid file, log, nodes.conf).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
acl_rules=$(dirname "$here")/deploy/redis/cohortsync.acl
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

start_timeout=30 # seconds, per wait
stop_timeout=5 # seconds, per server (after SHUTDOWN NOSAVE had 2 s)

install() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  local log=${TMPDIR:-/tmp}/cohortsync-redis-install.log
  # The lock timeout lets this wait for another apt-get (e.g. a provisioning one) to finish.
  if ! { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
      install -y --no-install-recommends redis-server; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "installing redis-server failed; full log: $log"
  fi
  command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
}

# launch DIR PORT [ARGS...]: start one daemonized redis-server in DIR.
launch() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" "$@" ||
    die "redis-server on port $port failed to start (log: $dir/redis.log)"
  echo "$port" >"$dir/port"
}

# wait_for DESCRIPTION COMMAND...: retry COMMAND every 0.1 s for start_timeout seconds.
wait_for() {
  local what=$1 i
  shift
  for ((i = 0; i < start_timeout * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "timed out after ${start_timeout}s waiting for $what (logs: $state/*/redis.log)"
}

pong() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }
cluster_ok() {
  local info
  info=$(redis-cli -p "$1" cluster info) &&
    grep -q '^cluster_state:ok' <<<"$info" &&
    grep -q '^cluster_slots_ok:16384' <<<"$info" &&
    grep -q '^cluster_known_nodes:3' <<<"$info"
}

print_vars() {
  echo "REDIS_URL=redis://127.0.0.1:$(cat "$state/standalone/port")/0"
  [[ -z $tls ]] || echo "REDIS_TLS_URL=rediss://127.0.0.1:$(cat "$state/tls/port")/0"
  echo "REDIS_ACL_USER=$(acl_user)"
  echo "REDIS_ACL_PASSWORD=$(cat "$state/acl/acl-password")"
  echo "REDIS_CLUSTER_ADDRS=$(for n in 1 2 3; do printf '127.0.0.1:%s\n' "$(cat "$state/cluster$n/port")"; done | paste -sd,)"
}

# acl_line: the user line of deploy/redis/cohortsync.acl; acl_user: its name.
acl_line() { grep -m1 '^user ' "$acl_rules"; }
acl_user() { acl_line | cut -d' ' -f2; }

# write_acl DIR: a random password in DIR/acl-password and DIR/users.acl
# granting it the rules of deploy/redis/cohortsync.acl (by its SHA-256);
# the default user keeps every right (the other tests connect as it).
write_acl() {
  local dir=$1 pw line
  mkdir -p "$dir"
  (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/acl-password")
  pw=$(cat "$dir/acl-password")
  line=$(acl_line) && [[ $line == *'>CHANGE-ME'* ]] || die "no 'user ... >CHANGE-ME ...' line in $acl_rules"
  (umask 077 && printf 'user default on nopass allkeys allchannels allcommands\n%s\n' \
    "${line/>CHANGE-ME/#$(printf %s "$pw" | sha256sum | cut -d' ' -f1)}" >"$dir/users.acl")
}

running_all() {
  local d
  [[ -f $state/acl/acl-password ]] || return 1
  [[ -z $tls ]] || { alive "$state/tls/redis.pid" redis-server && port_open "$(cat "$state/tls/port" 2>/dev/null)"; } || return 1
  for d in standalone cluster1 cluster2 cluster3; do
    alive "$state/$d/redis.pid" redis-server && pong "$(cat "$state/$d/port" 2>/dev/null)" || return 1
  done
}

start() {
  command -v redis-server >/dev/null || die "redis-server not found; run: $0 install"
  if running_all; then print_vars; return 0; fi # already running
  stop
  rm -rf "${state:?}"/standalone "$state"/cluster[123] "$state"/tls "$state"/acl
  write_acl "$state/acl"
  local ports p n addrs=()
  # One port for the standalone server, two (client, cluster bus) per cluster
  # node, and the TLS server's.
  read -r -a ports < <(free_ports 8)
  launch "$state/standalone" "${ports[0]}"
  if [[ -n $tls ]]; then
    # --port 0: TLS only; the plain port is written for stop's SHUTDOWN,
    # which then fails and stop_pid's TERM does it.
    launch "$state/tls" 0 --tls-port "${ports[7]}" --tls-cert-file "$tls/server.pem" \
      --tls-key-file "$tls/server-key.pem" --tls-ca-cert-file "$tls/ca.pem" --tls-auth-clients yes \
      --aclfile "$state/acl/users.acl"
    echo "${ports[7]}" >"$state/tls/port"
  fi
  for n in 1 2 3; do
    launch "$state/cluster$n" "${ports[n]}" --cluster-enabled yes \
      --cluster-port "${ports[n + 3]}" --cluster-config-file "$state/cluster$n/nodes.conf" \
      --cluster-node-timeout 5000 --aclfile "$state/acl/users.acl"
    addrs+=("127.0.0.1:${ports[n]}")
  done
  for p in "${ports[@]:0:4}"; do wait_for "redis-server on port $p" pong "$p"; done
  [[ -z $tls ]] || wait_for "redis-server TLS port ${ports[7]}" port_open "${ports[7]}"
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$state/cluster-create.log" 2>&1 ||
    { tail -n 20 "$state/cluster-create.log" >&2; die "redis-cli --cluster create failed (log: $state/cluster-create.log)"; }
  for p in "${ports[@]:1:3}"; do wait_for "cluster_state:ok on port $p" cluster_ok "$p"; done
  print_vars
}

stop() {
  local d pid i
  for d in "$state"/standalone "$state"/cluster[123] "$state"/tls; do
    [[ -f $d/redis.pid ]] || continue
    if alive "$d/redis.pid" redis-server; then
      pid=$(cat "$d/redis.pid")
      # SHUTDOWN NOSAVE first (clean and quick), stop_pid's TERM/KILL as fallback.
      [[ $d == */tls ]] || timeout 5 redis-cli -p "$(cat "$d/port")" shutdown nosave >/dev/null 2>&1 || true
      for ((i = 0; i < 20; i++)); do running "$pid" || break; sleep 0.1; done
    fi
    stop_pid "$d/redis.pid" redis-server "$stop_timeout"
  done
}

case ${1:-} in
  install) install ;;
  start | stop)
    [[ $# -eq 2 || $# -eq 3 ]] || die "usage: $0 $1 STATEDIR [TLSDIR]"
    mkdir -p "$2"
    state=$(cd "$2" && pwd)
    tls=${3:-}
    "$1"
    ;;
  *) die "usage: $0 install | start STATEDIR | stop STATEDIR" ;;
esac
