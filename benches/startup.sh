#!/usr/bin/env bash
# Startup benchmark for the main job (issue "Migrate at container start"): whole-process
# timings, median of many runs, side by side with the floor `psql -X -c 'select 1'` against
# the same throwaway local PostgreSQL. Prints figures; asserts nothing.
#   benches/startup.sh [RUNS]     (default 50)
set -euo pipefail
runs=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/yogaflow-migrate"

# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"
start_pg
psql_ -c 'CREATE DATABASE current_db' -c 'CREATE DATABASE scratch'
export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/current_db"
"$bin" up 2>/dev/null

python3 - "$runs" "$bin" "$port" <<'PY'
import os, statistics, subprocess, sys, time
runs, binary, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
url = os.environ["DATABASE_URL"]
def median_ms(cmd, env=None, before=None):
    times = []
    for _ in range(runs):
        if before: before()
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
def psql(sql, db="postgres"):
    subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)
def fresh():
    psql("DROP DATABASE IF EXISTS scratch"); psql("CREATE DATABASE scratch")
def peak_kb(env):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "up"], env=env, capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])
floor = median_ms(["psql", "-X", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "current_db", "-c", "select 1"])
noop = median_ms([binary, "up"])
scratch = dict(os.environ, DATABASE_URL=url.replace("/current_db", "/scratch"))
all5 = median_ms([binary, "up"], env=scratch, before=fresh)
fresh()
mem_all = peak_kb(scratch)
mem_noop = peak_kb(os.environ)
size = os.path.getsize(binary)
print(f"{'measure':<44}{'value':>12}")
print(f"{'floor: psql -X -c select 1 (median)':<44}{floor:>9.1f} ms")
print(f"{'up, nothing to apply (median)':<44}{noop:>9.1f} ms  ({noop/floor:.2f} x floor)")
print(f"{'up, all five on an empty database (median)':<44}{all5:>9.1f} ms")
print(f"{'peak memory, nothing to apply':<44}{mem_noop/1024:>9.1f} MB")
print(f"{'peak memory, all five':<44}{mem_all/1024:>9.1f} MB")
print(f"{'binary size (stripped release)':<44}{size/1e6:>9.1f} MB")
print(f"runs per figure: {runs}")
PY
