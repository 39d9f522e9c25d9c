# shellcheck shell=bash
# A throwaway local PostgreSQL cluster for the shell scripts (benchmarks, container tests):
# the one copy of that setup for shell; Rust tests have theirs in tests/support.
#   start_pg [--tls] [--password PW]
#     initdb + start on a free port, listening on 127.0.0.1 and a socket in $work. Sets $port,
#     $work and $bindir. --tls: a server certificate for CN=localhost with SAN DNS:localhost and
#     IP:127.0.0.1 at $work/server.crt (also the root a client trusts). --password: TCP logins
#     need PW (scram-sha-256); without it, trust.
#   stop_pg        stops the cluster and removes $work (start_pg sets it as the EXIT trap;
#                  a script with more to clean up calls it from its own trap)
#   pause_pg       stops the server, keeping the cluster; resume_pg starts it again (a
#                  database that comes up after its client)
#   psql_ ARGS     psql as postgres over the socket, unaligned, tuples only
#   free_port      a port that was free a moment ago
bindir=${PG_BIN:-$(pg_config --bindir 2>/dev/null || printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop_pg() {
  as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
start_pg() {
  local tls="" password=""
  while [ $# -gt 0 ]; do
    case $1 in
      --tls) tls=1 ;;
      --password) password=$2; shift ;;
      *) echo "start_pg: unknown option $1" >&2; return 2 ;;
    esac
    shift
  done
  work=$(mktemp -d)
  chmod 755 "$work"
  [ "$(id -u)" = 0 ] && chown postgres "$work"
  port=$(free_port)
  trap stop_pg EXIT
  local auth=(--auth=trust)
  if [ -n "$password" ]; then
    printf '%s' "$password" >"$work/pw"
    [ "$(id -u)" = 0 ] && chown postgres "$work/pw"
    auth=(--auth-local=trust --auth-host=scram-sha-256 "--pwfile=$work/pw")
  fi
  as_pg "$bindir/initdb" -D "$work/data" -U postgres "${auth[@]}" >/dev/null
  rm -f "$work/pw"
  local ssl=""
  if [ -n "$tls" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$work/server.key" -out "$work/server.crt" \
      -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
    chmod 600 "$work/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$work/server.key" "$work/server.crt"
    ssl="-c ssl=on -c ssl_cert_file=$work/server.crt -c ssl_key_file=$work/server.key"
  fi
  pg_opts="-p $port -k $work -c listen_addresses=127.0.0.1 -c max_wal_size=4GB -c shared_buffers=256MB $ssl"
  resume_pg
}
resume_pg() { as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w -o "$pg_opts" start >/dev/null; }
pause_pg() { as_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null; }
psql_() { psql -X -A -t -q -h "$work" -p "$port" -U postgres "$@"; }
