#!/usr/bin/env bash
# Starts/stops the real backing services for the integration tests: a Kafka
# broker (scripts/kafka.sh) and Redis standalone + cluster (scripts/redis.sh).
#
#   services.sh start [STATEDIR]   install if needed, start, write STATEDIR/env
#   services.sh stop  [STATEDIR]   stop everything started in STATEDIR
#
# STATEDIR defaults to .run/services in the repo. STATEDIR/env holds the
# variables the Go integration tests read:
#   COHORTSYNC_TEST_KAFKA_BROKERS, COHORTSYNC_TEST_REDIS_URL, COHORTSYNC_TEST_REDIS_CLUSTER,
#   and the TLS listeners (client certificates required, one test CA):
#   COHORTSYNC_TEST_KAFKA_TLS_BROKERS, COHORTSYNC_TEST_REDIS_TLS_URL and
#   COHORTSYNC_TEST_TLS_DIR (ca.pem, client.pem, client-key.pem)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

cmd=${1:-}
[[ $cmd == start || $cmd == stop ]] || die "usage: $0 start|stop [STATEDIR]"
state=${2:-$root/.run/services}
mkdir -p "$state"
state=$(cd "$state" && pwd)

stop() {
  local rc=0
  rm -f "$state/env"
  bash "$here/kafka.sh" stop "$state/kafka" || rc=1
  bash "$here/redis.sh" stop "$state/redis" || rc=1
  return "$rc"
}

# val NAME FILE: the value of a NAME=value line printed by kafka.sh / redis.sh.
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

start() {
  bash "$here/kafka.sh" install
  bash "$here/redis.sh" install
  # One CA for the TLS listeners of both; the tests get a client certificate.
  rm -rf "$state/tls"
  make_certs "$state/tls"
  # Redis starts in the background while the JVM boots.
  bash "$here/redis.sh" start "$state/redis" "$state/tls" >"$state/redis.vars" &
  local redis_pid=$! rc=0
  bash "$here/kafka.sh" start "$state/kafka" "$state/tls" >"$state/kafka.vars" || rc=1
  wait "$redis_pid" || rc=1
  if ((rc)); then
    stop || true
    die "starting services failed (see the messages above; state in $state)"
  fi
  local brokers tls_brokers url tls_url cluster
  brokers=$(val KAFKA_BROKERS "$state/kafka.vars")
  tls_brokers=$(val KAFKA_TLS_BROKERS "$state/kafka.vars")
  url=$(val REDIS_URL "$state/redis.vars")
  tls_url=$(val REDIS_TLS_URL "$state/redis.vars")
  cluster=$(val REDIS_CLUSTER_ADDRS "$state/redis.vars")
  [[ -n $brokers && -n $tls_brokers && -n $url && -n $tls_url && -n $cluster ]] ||
    { stop || true; die "a start script printed no address"; }
  cat >"$state/env.tmp" <<ENV
export COHORTSYNC_TEST_KAFKA_BROKERS=$brokers
export COHORTSYNC_TEST_KAFKA_TLS_BROKERS=$tls_brokers
export COHORTSYNC_TEST_REDIS_URL=$url
export COHORTSYNC_TEST_REDIS_TLS_URL=$tls_url
export COHORTSYNC_TEST_REDIS_CLUSTER=$cluster
export COHORTSYNC_TEST_TLS_DIR=$state/tls
ENV
  mv "$state/env.tmp" "$state/env"
}

"$cmd"
