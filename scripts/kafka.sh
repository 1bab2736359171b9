#!/usr/bin/env bash
# Runs a real single-node Apache Kafka broker (KRaft, plain Java from Maven
# Central, no Docker) on free loopback ports, for the integration tests.
#
#   kafka.sh install            fetch the broker jars into the cache (once)
#   kafka.sh start STATEDIR [TLSDIR]
#                               start a broker, print KAFKA_BROKERS=127.0.0.1:PORT;
#                               with TLSDIR (lib.sh's make_certs) also an SSL
#                               listener requiring client certificates, printed
#                               as KAFKA_TLS_BROKERS=127.0.0.1:PORT, and a
#                               SASL_SSL listener (server TLS, SCRAM-SHA-256
#                               and -512, no client certificate) with one
#                               user made at format time, printed as
#                               KAFKA_SASL_BROKERS=127.0.0.1:PORT,
#                               KAFKA_SASL_USER=... and KAFKA_SASL_PASSWORD=...
#                               (a random password, kept in STATEDIR/sasl-password)
#   kafka.sh stop STATEDIR      stop it (TERM, then KILL after 30 s)
#   kafka.sh resume STATEDIR    start a stopped broker again on its ports and
#                               data (the chaos suite's broker outage)
#
# Cache: ${COHORTSYNC_CACHE:-$HOME/.cache/cohortsync}/kafka-<version>/lib.
# Logs, data, config and pid file live in STATEDIR.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

pom=$root/deploy/kafka/pom.xml
log4j=$root/deploy/kafka/log4j2.yaml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
[[ -n $version ]] || die "no <kafka.version> in $pom"
home=${COHORTSYNC_CACHE:-$HOME/.cache/cohortsync}/kafka-$version
lib=$home/lib
start_timeout=90 # seconds
stop_timeout=30  # seconds
sasl_user=cohortsync

install() {
  # The stamp holds the pom's hash: editing the pom re-fetches.
  local sum
  sum=$(sha256sum "$pom" "$log4j" | sha256sum | cut -d' ' -f1)
  [[ -f $lib/.complete && $(cat "$lib/.complete") == "$sum" ]] && return 0
  command -v java >/dev/null || die "java not found (Kafka $version needs Java 17+)"
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  mkdir -p "$home"
  rm -rf "$lib.tmp"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$lib.tmp" \
    >"$home/install.log" 2>&1; then
    tail -n 30 "$home/install.log" >&2
    die "fetching Kafka $version jars failed; full log: $home/install.log"
  fi
  echo "$sum" >"$lib.tmp/.complete"
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
}

start() {
  local dir=$1 tls=${2:-} port cport sport aport id jopts listeners advertised protocols
  local ssl_props=() scram=()
  # The JVM's temporary files (lz4's native library, extracted on first
  # use) go in the state directory, not /tmp, so that a stop leaves none.
  mkdir -p "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  jopts=(-Dlog4j2.configurationFile="$log4j" -Dkafka.logs.dir="$dir/logs" -Djava.awt.headless=true -Djava.io.tmpdir="$dir/tmp")
  [[ -f $lib/.complete ]] || die "Kafka jars missing; run: $0 install"
  if alive "$dir/kafka.pid" kafka.Kafka && ports_open "$dir" "$tls"; then
    print_vars "$dir" "$tls" # already running
    return 0
  fi
  stop "$dir"
  rm -rf "$dir/data" "$dir/logs" && mkdir -p "$dir/data" "$dir/logs"
  read -r port cport sport aport < <(free_ports 4)
  listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
  advertised=PLAINTEXT://127.0.0.1:$port
  protocols=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
  rm -f "$dir/tls-port" "$dir/sasl-port" "$dir/sasl-password"
  if [[ -n $tls ]]; then
    listeners+=,SSL://127.0.0.1:$sport,SASL_SSL://127.0.0.1:$aport
    advertised+=,SSL://127.0.0.1:$sport,SASL_SSL://127.0.0.1:$aport
    protocols+=,SSL:SSL,SASL_SSL:SASL_SSL
    # PEM stores (Kafka 2.7+): the key (unencrypted PKCS#8) and chain in one file.
    # Client certificates are required on the SSL listener, not on SASL_SSL,
    # where the SCRAM password authenticates (listener-prefixed: a broker-wide
    # ssl.client.auth may apply to SASL_SSL in later Kafka releases).
    ssl_props=(ssl.keystore.type=PEM "ssl.keystore.location=$tls/server-keystore.pem"
      ssl.truststore.type=PEM "ssl.truststore.location=$tls/ca.pem"
      listener.name.ssl.ssl.client.auth=required listener.name.sasl_ssl.ssl.client.auth=none
      listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
      "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;")
    # The SCRAM user is written into the metadata log by the format (KRaft
    # has no ZooKeeper to hold it), so the broker starts with it.
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/sasl-password")
    local pw
    pw=$(cat "$dir/sasl-password")
    scram=(--add-scram "SCRAM-SHA-256=[name=$sasl_user,password=$pw]"
      --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$pw]")
    echo "$sport" >"$dir/tls-port"
    echo "$aport" >"$dir/sasl-port"
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
log.cleaner.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
PROPS
  ((${#ssl_props[@]} == 0)) || printf '%s\n' "${ssl_props[@]}" >>"$dir/server.properties"
  # A cluster id is 16 random bytes, base64url without padding (as StorageTool random-uuid).
  # One starting with '-' would be parsed as an option (a 1-in-64 failure), so draw again.
  id=-
  while [[ $id == -* ]]; do id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
  java "${jopts[@]}" -cp "$lib/*" kafka.tools.StorageTool format \
    -t "$id" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die "formatting Kafka storage failed (log: $dir/format.log)"; }
  echo "$port" >"$dir/port"
  launch "$dir" "$tls"
}

# ports_open DIR TLSDIR: every listener of DIR's broker accepts connections.
ports_open() {
  [[ -f $1/port ]] && port_open "$(cat "$1/port")" &&
    { [[ -z $2 ]] || { [[ -f $1/tls-port && -f $1/sasl-port ]] &&
      port_open "$(cat "$1/tls-port")" && port_open "$(cat "$1/sasl-port")"; }; }
}

# launch DIR TLSDIR: run the broker of DIR's server.properties and data,
# and wait until it is ready.
launch() {
  local dir=$1 tls=$2 jopts i
  jopts=(-Dlog4j2.configurationFile="$log4j" -Dkafka.logs.dir="$dir/logs" -Djava.awt.headless=true -Djava.io.tmpdir="$dir/tmp")
  : >"$dir/logs/server.log"
  mkdir -p "$dir/tmp"
  nohup java -Xms256m -Xmx768m "${jopts[@]}" -cp "$lib/*" \
    kafka.Kafka "$dir/server.properties" >"$dir/kafka.out" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  # Ready = the broker logged "Kafka Server started" (it is then unfenced and
  # has caught up with the metadata log) and accepts connections.
  for ((i = 0; i < start_timeout * 10; i++)); do
    alive "$dir/kafka.pid" kafka.Kafka ||
      { tail -n 30 "$dir/kafka.out" "$dir/logs/server.log" >&2 2>/dev/null || true
        die "Kafka broker exited during startup (logs: $dir/kafka.out, $dir/logs/server.log)"; }
    if grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null && ports_open "$dir" "$tls"; then
      print_vars "$dir" "$tls"
      return 0
    fi
    sleep 0.1
  done
  stop "$dir"
  die "Kafka broker not ready after ${start_timeout}s (logs: $dir/kafka.out, $dir/logs/server.log)"
}

print_vars() {
  echo "KAFKA_BROKERS=127.0.0.1:$(cat "$1/port")"
  [[ -z $2 ]] || {
    echo "KAFKA_TLS_BROKERS=127.0.0.1:$(cat "$1/tls-port")"
    echo "KAFKA_SASL_BROKERS=127.0.0.1:$(cat "$1/sasl-port")"
    echo "KAFKA_SASL_USER=$sasl_user"
    echo "KAFKA_SASL_PASSWORD=$(cat "$1/sasl-password")"
  }
}

stop() {
  stop_pid "$1/kafka.pid" kafka.Kafka "$stop_timeout"
}

resume() {
  local dir
  dir=$(cd "$1" && pwd)
  [[ -f $dir/server.properties && -f $dir/port ]] || die "no broker was started in $dir"
  alive "$dir/kafka.pid" kafka.Kafka && die "the broker of $dir is running"
  local tls=
  [[ -f $dir/tls-port ]] && tls=yes
  launch "$dir" "$tls"
}

case ${1:-} in
  install) install ;;
  start) [[ $# -eq 2 || $# -eq 3 ]] || die "usage: $0 start STATEDIR [TLSDIR]"; start "$2" "${3:-}" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop STATEDIR"; stop "$2" ;;
  resume) [[ $# -eq 2 ]] || die "usage: $0 resume STATEDIR"; resume "$2" ;;
  *) die "usage: $0 install | start STATEDIR [TLSDIR] | stop STATEDIR | resume STATEDIR" ;;
esac
