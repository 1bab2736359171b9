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
#   COHORTSYNC_TEST_TLS_DIR (ca.pem, client.pem, client-key.pem);
#   and the credentials over TLS: the broker's SASL_SSL listener (SCRAM-SHA-256
#   and -512, server TLS only) COHORTSYNC_TEST_KAFKA_SASL_BROKERS with its user
#   COHORTSYNC_TEST_KAFKA_SASL_USER / _PASSWORD, and the ACL user of the TLS
#   redis-server and of the Cluster's nodes (deploy/redis/cohortsync.acl)
#   COHORTSYNC_TEST_REDIS_ACL_USER / _PASSWORD. The passwords are drawn at
#   each start; STATEDIR/env is mode 600.
#
# stop stops every server and removes the files holding passwords (the
# vars files, env, the Kafka SCRAM password and the Redis ACL files); logs and
# data stay for a failed run's diagnosis (scripts/test.sh removes STATEDIR
# after a passing run).
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
  rm -f "$state/env" "$state/env.tmp" "$state/kafka.vars" "$state/redis.vars"
  bash "$here/kafka.sh" stop "$state/kafka" || rc=1
  bash "$here/redis.sh" stop "$state/redis" || rc=1
  rm -f "$state/kafka/sasl-password" "$state/redis/acl/acl-password" "$state/redis/acl/users.acl"
  return "$rc"
}

# val NAME FILE: the value of a NAME=value line printed by kafka.sh / redis.sh.
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

start() {
  umask 077 # the vars files and env hold passwords
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
  local brokers tls_brokers sasl_brokers sasl_user sasl_pw url tls_url acl_user acl_pw cluster
  brokers=$(val KAFKA_BROKERS "$state/kafka.vars")
  tls_brokers=$(val KAFKA_TLS_BROKERS "$state/kafka.vars")
  sasl_brokers=$(val KAFKA_SASL_BROKERS "$state/kafka.vars")
  sasl_user=$(val KAFKA_SASL_USER "$state/kafka.vars")
  sasl_pw=$(val KAFKA_SASL_PASSWORD "$state/kafka.vars")
  url=$(val REDIS_URL "$state/redis.vars")
  tls_url=$(val REDIS_TLS_URL "$state/redis.vars")
  acl_user=$(val REDIS_ACL_USER "$state/redis.vars")
  acl_pw=$(val REDIS_ACL_PASSWORD "$state/redis.vars")
  cluster=$(val REDIS_CLUSTER_ADDRS "$state/redis.vars")
  [[ -n $brokers && -n $tls_brokers && -n $sasl_brokers && -n $sasl_user && -n $sasl_pw &&
    -n $url && -n $tls_url && -n $acl_user && -n $acl_pw && -n $cluster ]] ||
    { stop || true; die "a start script printed no address"; }
  (umask 077 && cat >"$state/env.tmp") <<ENV
export COHORTSYNC_TEST_KAFKA_BROKERS=$brokers
export COHORTSYNC_TEST_KAFKA_TLS_BROKERS=$tls_brokers
export COHORTSYNC_TEST_KAFKA_SASL_BROKERS=$sasl_brokers
export COHORTSYNC_TEST_KAFKA_SASL_USER=$sasl_user
export COHORTSYNC_TEST_KAFKA_SASL_PASSWORD=$sasl_pw
export COHORTSYNC_TEST_REDIS_URL=$url
export COHORTSYNC_TEST_REDIS_TLS_URL=$tls_url
export COHORTSYNC_TEST_REDIS_ACL_USER=$acl_user
export COHORTSYNC_TEST_REDIS_ACL_PASSWORD=$acl_pw
export COHORTSYNC_TEST_REDIS_CLUSTER=$cluster
export COHORTSYNC_TEST_TLS_DIR=$state/tls
ENV
  mv "$state/env.tmp" "$state/env"
}

"$cmd"
