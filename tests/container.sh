#!/usr/bin/env bash
# Container tests (run by .ci/run after scripts/build-image.sh): the real image against a
# throwaway PostgreSQL on the host. Prints PASS/FAIL per check and "N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-yogaflow-migrate:test}
# shellcheck disable=SC1091
. "$root/target/container.env"
export CONTAINERS_CONF
secret='Cont41ner-Secret-Fig'
passed=0
failed=0
check() { # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}

# shellcheck source=scripts/pg.sh
. "$root/scripts/pg.sh"
start_pg --password "$secret"
cleanup() {
  podman rm -f -t 0 yf-pid1 >/dev/null 2>&1 || true
  stop_pg
}
trap cleanup EXIT
newdb() { local db="c$RANDOM$RANDOM"; psql_ -d postgres -c "CREATE DATABASE $db"; echo "$db"; }
url() { echo "postgresql://postgres:$secret@127.0.0.1:$port/$1"; }
run() { podman run --rm --network host "$@"; }
logs=""

# 1. Good URL: migrations applied, then the app command runs.
db=$(newdb)
out=$(run -e DATABASE_URL="$(url "$db")" "$image" sh -c 'echo started' 2>&1); code=$?
logs+="$out"
[ $code -eq 0 ] && grep -q '^started$' <<<"$out" && [ "$(psql_ -d "$db" -c 'SELECT count(*) FROM refinery_schema_history')" = 5 ]
check "good DATABASE_URL: migrated, app started, exit 0" $?

# 2. Failures exit with the migrator's code and never start the app.
expect_fail() { # NAME CODE URL [extra podman args]
  local name=$1 want=$2 u=$3; shift 3
  out=$(run -e DATABASE_URL="$u" -e MIGRATE_WAIT_TIMEOUT=2 "$@" "$image" sh -c 'echo started' 2>&1); code=$?
  logs+="$out"
  [ $code -eq "$want" ] && ! grep -q '^started$' <<<"$out"
  check "$name: exit $want (got $code), app not started" $?
}
closed=$(free_port)
expect_fail "unreachable database" 3 "postgresql://postgres:$secret@127.0.0.1:$closed/x"
expect_fail "wrong password" 4 "postgresql://postgres:Wrong-$secret@127.0.0.1:$port/$db"
expect_fail "malformed URL" 2 "postgresql://postgres:$secret@127.0.0.1:notaport/x"

# 3. After exec the app is PID 1 and a stop ends the container promptly.
podman run -d --name yf-pid1 --network host -e DATABASE_URL="$(url "$db")" "$image" \
  sh -c 'echo "pid=$$"; trap "echo got-TERM; exit 0" TERM; sleep 300 & wait' >/dev/null
for _ in $(seq 50); do podman logs yf-pid1 2>&1 | grep -q '^pid=' && break; sleep 0.2; done
podman logs yf-pid1 2>&1 | grep -q '^pid=1$'
check "the app is PID 1 after exec" $?
start=$(date +%s%N)
podman stop -t 10 yf-pid1 >/dev/null 2>&1
took=$(( ($(date +%s%N) - start) / 1000000 ))
# The app (PID 1, with a TERM handler as real servers have) got the signal itself.
[ "$took" -lt 5000 ] && podman logs yf-pid1 2>&1 | grep -q '^got-TERM$' 
check "stop ends the container promptly (${took} ms)" $?
logs+=$(podman logs yf-pid1 2>&1)
podman rm -f yf-pid1 >/dev/null 2>&1

# 4. Migrator subcommands and a SQLite file on a volume.
out=$(run -e DATABASE_URL="$(url "$db")" "$image" status 2>&1); code=$?
logs+="$out"
[ $code -eq 0 ] && grep -q 'V5__query_indexes' <<<"$out"
check "IMAGE status works" $?
vol="$work/vol"; mkdir -p "$vol"; chmod 777 "$vol"
out=$(run -v "$vol:/data" -e DATABASE_URL=sqlite:////data/yogaflow.db "$image" 2>&1); code=$?
logs+="$out"
[ $code -eq 0 ] && [ -s "$vol/yogaflow.db" ]
check "no command: migrates a SQLite file on a volume and exits 0" $?
out=$(run -e MIGRATE_ON_START=false "$image" sh -c 'echo skipped' 2>&1); code=$?
[ $code -eq 0 ] && grep -q '^skipped$' <<<"$out" && ! grep -q 'database:' <<<"$out"
check "MIGRATE_ON_START=false skips the migration" $?
out=$(run -e RAILWAY_ENVIRONMENT=production "$image" sh -c 'echo started' 2>&1); code=$?
[ $code -eq 2 ] && ! grep -q '^started$' <<<"$out"
check "on Railway an unset DATABASE_URL stops the deploy (exit 2)" $?

# 5. Non-root, and the password appears in no output.
uid=$(run -e MIGRATE_ON_START=false "$image" id -u 2>&1)
[ "$uid" != 0 ] && [ -n "$uid" ]
check "runs as a non-root user (uid $uid)" $?
! grep -qF "$secret" <<<"$logs"
check "the password appears in no container output" $?

# 6. Linters.
shellcheck "$root/docker-entrypoint.sh" "$root"/scripts/*.sh "$root/tests/container.sh"
check "shellcheck" $?
hadolint=$(command -v hadolint || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint")
"$hadolint" "$root/Dockerfile"
check "hadolint" $?

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
