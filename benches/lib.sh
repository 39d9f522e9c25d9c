# shellcheck shell=bash
# Shared by the benchmark scripts: a throwaway local PostgreSQL cluster.
# Defines: start_pg [tls] (sets $port, $work, psql_; with `tls`, a server certificate for
# CN=localhost with SAN DNS:localhost and IP:127.0.0.1 at $work/server.crt, which is also the
# root a client trusts), and a cleanup trap.
bindir=${PG_BIN:-$(pg_config --bindir 2>/dev/null || printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start_pg() {
  work=$(mktemp -d)
  [ "$(id -u)" = 0 ] && chown postgres "$work"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  trap 'as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
  local ssl=""
  if [ "${1:-}" = tls ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$work/server.key" -out "$work/server.crt" \
      -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
    chmod 600 "$work/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$work/server.key" "$work/server.crt"
    ssl="-c ssl=on -c ssl_cert_file=$work/server.crt -c ssl_key_file=$work/server.key"
  fi
  as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_wal_size=4GB -c shared_buffers=256MB $ssl" start >/dev/null
}
psql_() { psql -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }
