# shellcheck shell=bash
# Shared helpers for scripts/{kafka,redis,services}.sh. Sourced, not run.

die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# free_ports N: print N distinct free TCP ports on 127.0.0.1 (bound at the same
# time, so they differ; the kernel may hand them out again later, a small race).
free_ports() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])' "$1"
  else # fallback: random ports in 20000-39999 that refuse connections
    local out=() p
    while ((${#out[@]} < $1)); do
      p=$((20000 + RANDOM % 20000))
      [[ " ${out[*]} " == *" $p "* ]] && continue
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || out+=("$p")
    done
    echo "${out[@]}"
  fi
}

# port_open PORT: true if something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# running PID: the process exists and is not a zombie (an orphan whose new parent
# does not reap it would otherwise look alive forever).
running() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

# alive PIDFILE PATTERN: true if the pid in PIDFILE runs a command matching PATTERN
# (guards against killing an unrelated process that reused a stale pid).
alive() {
  local pid cmd
  pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && running "$pid" &&
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") && [[ $cmd == *"$2"* ]]
}

# stop_pid PIDFILE PATTERN TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
stop_pid() {
  local pidfile=$1 pattern=$2 timeout=$3 pid i
  if alive "$pidfile" "$pattern"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "${0##*/}: $pattern (pid $pid) ignored SIGTERM for ${timeout}s, killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

# make_certs DIR: a CA (ca.pem), a server certificate for 127.0.0.1 and
# localhost (server.pem, server-key.pem, and server-keystore.pem: key and
# certificate in one PEM file, as Kafka's PEM key store reads it) and a
# client certificate (client.pem, client-key.pem), valid two days, for the
# TLS listeners of the test services. Keys are unencrypted PKCS#8 RSA.
make_certs() {
  local dir=$1 log=$1/openssl.log name eku
  command -v openssl >/dev/null || die "openssl not found (needed for the TLS test services)"
  mkdir -p "$dir"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" \
      -days 2 -subj "/CN=cohortsync test CA" &&
      for name in server client; do
        eku=serverAuth,clientAuth
        [[ $name == client ]] && eku=clientAuth
        openssl req -newkey rsa:2048 -nodes -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" \
          -subj "/CN=cohortsync test $name" &&
          printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$eku" >"$dir/$name.ext" &&
          openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
            -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.pem" || return 1
      done
  } >"$log" 2>&1 || { cat "$log" >&2; die "making test certificates failed (log: $log)"; }
  cat "$dir/server-key.pem" "$dir/server.pem" >"$dir/server-keystore.pem"
  chmod 600 "$dir"/*-key.pem "$dir/server-keystore.pem"
}
