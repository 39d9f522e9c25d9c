#!/bin/sh
# Container entrypoint: migrate, then become the app.
#   IMAGE CMD...            run `yogaflow-migrate up`; on failure exit with its code (the app
#                           never starts); on success `exec CMD...`, so the app is PID 1 and
#                           receives SIGTERM itself.
#   IMAGE                   migrate and exit with the migrator's code.
#   IMAGE status|verify|... run that migrator command instead (as database images do).
#   MIGRATE_ON_START=false  skip the migration (a one-off shell, say).
set -eu

case "${1:-}" in
  up|status|verify|down|baseline|complete|export|import|copy|help|-h|--help|-V|--version)
    exec yogaflow-migrate "$@"
    ;;
esac

if [ "${MIGRATE_ON_START:-true}" != "false" ]; then
  # In the background, so that a SIGTERM or SIGINT sent to this PID 1 reaches the migrator,
  # which rolls back and exits non-zero.
  yogaflow-migrate up &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null || true' TERM
  trap 'kill -INT "$child" 2>/dev/null || true' INT
  status=0
  wait "$child" || status=$?
  if kill -0 "$child" 2>/dev/null; then
    # wait was cut short by a trapped signal: collect the migrator's own exit code.
    status=0
    wait "$child" || status=$?
  fi
  trap - TERM INT
  if [ "$status" -ne 0 ]; then
    echo "docker-entrypoint: migration failed (exit $status); not starting the app" >&2
    exit "$status"
  fi
fi

if [ "$#" -eq 0 ]; then
  exit 0
fi
exec "$@"
