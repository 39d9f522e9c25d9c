#!/usr/bin/env bash
# Transfer benchmark (issue "Move the data"): at a given scale, side by side in one run against
# one throwaway local PostgreSQL:
#   floor   psql \copy of the same rows from CSV (FKs and secondary indexes dropped first and
#           added back after, all timed)
#   copy    yogaflow-migrate copy SQLite -> PostgreSQL
#   export  yogaflow-migrate export SQLite -> JSON, beside a Python json.dump script
#   import  yogaflow-migrate import JSON -> PostgreSQL
#   import  yogaflow-migrate import JSON -> SQLite (a fresh file)
#   pgloader (data only, into the migrated schema) when installed
# with peak memory (/usr/bin/time %M). Prints figures; asserts nothing.
#   benches/transfer.sh [SCALE] [OTHER_BINARY]   (default 1: about 1M rows, 90 MB; OTHER_BINARY,
#                                                 such as an older build, runs the same steps)
set -euo pipefail
scale=${1:-1}
other=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/yogaflow-migrate"
data="$root/target/bench"
mkdir -p "$data"
src="$data/yogaflow-scale$scale.db"
if [ ! -f "$src" ]; then
  DATABASE_URL="sqlite:///$src" "$bin" up 2>/dev/null
  python3 "$root/benches/gen_sqlite.py" "$src" "$scale"
fi
# shellcheck source=scripts/pg.sh
. "$root/scripts/pg.sh"
# shellcheck disable=SC2119 # no options: a trust cluster
start_pg
export PGTZ=UTC
python3 - "$bin" "$src" "$port" "$data" "$other" <<'PY'
import csv, json, os, shutil, sqlite3, subprocess, sys, time
binary, src, port, data, other = sys.argv[1:6]
tables = ["users", "poses", "sequences", "sequence_poses", "practice_sessions", "practice_history"]
rows = sum(sqlite3.connect(src).execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
size = os.path.getsize(src) / 1e6
def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db,
                           "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True).stdout
n = [0]
def fresh(migrate=True):
    n[0] += 1
    db = f"bench{n[0]}"
    psql(f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:{port}/{db}"
    if migrate:
        subprocess.run([binary, "up"], env=dict(os.environ, DATABASE_URL=url), check=True, capture_output=True)
    return db, url
def timed(cmd, env=None):
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr[-2000:]}")
    return secs, int(out.stderr.strip().splitlines()[-1]) / 1024

# The floor: CSV files (not timed), then drop FKs and indexes, \copy, add them back (timed).
csvdir = os.path.join(data, "csv")
os.makedirs(csvdir, exist_ok=True)
con = sqlite3.connect(src)
for t in tables:
    cur = con.execute(f"SELECT * FROM {t}")
    with open(os.path.join(csvdir, t + ".csv"), "w", newline="") as f:
        w = csv.writer(f)
        for r in cur:
            w.writerow(["\\x" + v.hex() if isinstance(v, bytes) else ("" if v is None else v) for v in r])
db, _ = fresh()
fks = psql("SELECT string_agg(format('ALTER TABLE %I ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)), ';') FROM pg_constraint WHERE contype = 'f'", db).strip()
drop_fks = psql("SELECT string_agg(format('ALTER TABLE %I DROP CONSTRAINT %I', conrelid::regclass, conname), ';') FROM pg_constraint WHERE contype = 'f'", db).strip()
idx = psql("SELECT string_agg(indexdef, ';') FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'ix_%'", db).strip()
drop_idx = psql("SELECT string_agg(format('DROP INDEX %I', indexname), ';') FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'ix_%'", db).strip()
script = [drop_fks + ";", drop_idx + ";", "BEGIN;"]
for t in tables:
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
    script.append(f"\\copy {t} ({', '.join(cols)}) FROM '{os.path.join(csvdir, t + '.csv')}' WITH (FORMAT csv)")
script += [idx + ";", fks + ";", "COMMIT;"]
with open(os.path.join(data, "floor.sql"), "w") as f:
    f.write("\n".join(script) + "\n")
floor, floor_mem = timed(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-f", os.path.join(data, "floor.sql")])

def ours(binary):
    got = {}
    db, url = fresh()
    got["copy"] = timed([binary, "copy", "--from", f"sqlite:///{src}"], env=dict(os.environ, DATABASE_URL=url))
    db, url = fresh()
    got["copy_nv"] = timed([binary, "copy", "--no-verify", "--from", f"sqlite:///{src}"], env=dict(os.environ, DATABASE_URL=url))
    out = os.path.join(data, "export.json")
    got["export"] = timed([binary, "export", "--out", out], env=dict(os.environ, DATABASE_URL=f"sqlite:///{src}"))
    db, url = fresh()
    got["import"] = timed([binary, "import", out], env=dict(os.environ, DATABASE_URL=url))
    lite = os.path.join(data, "import.db")
    if os.path.exists(lite):
        os.remove(lite)
    got["import_sqlite"] = timed([binary, "import", out], env=dict(os.environ, DATABASE_URL=f"sqlite:///{lite}"))
    return got
mine = ours(binary)
theirs = ours(other) if other else None

pyexport = os.path.join(data, "pyexport.py")
with open(pyexport, "w") as f:
    f.write(f'''import base64, json, sqlite3, sys
con = sqlite3.connect(sys.argv[1]); con.row_factory = sqlite3.Row
doc = {{}}
for t in {tables!r}:
    doc[t] = [{{k: (base64.b64encode(r[k]).decode() if isinstance(r[k], bytes) else r[k]) for k in r.keys()}} for r in con.execute(f"SELECT * FROM {{t}}")]
json.dump(doc, open(sys.argv[2], "w"))
''')
py, py_mem = timed([sys.executable, pyexport, src, os.path.join(data, "py.json")])

loader = None
if shutil.which("pgloader"):
    db, url = fresh()
    load = os.path.join(data, "pgloader.load")
    with open(load, "w") as f:
        f.write(f"LOAD DATABASE FROM sqlite://{src} INTO postgresql://postgres@127.0.0.1:{port}/{db}\n"
                "WITH data only, reset sequences, truncate\nEXCLUDING TABLE NAMES LIKE 'refinery_schema_history';\n")
    loader = timed(["pgloader", "--quiet", load])

print(f"scale {sys.argv[0] and os.path.basename(src)}: {rows} rows, {size:.0f} MB SQLite file")
print(f"{'run':<46}{'seconds':>9}{'x floor':>9}{'peak MB':>9}")
def line(name, secs, mem, ratio=True):
    print(f"{name:<46}{secs:>9.2f}{(secs / floor if ratio else float('nan')):>9.2f}{mem:>9.1f}")
line("floor: psql \\copy from CSV (+FKs, indexes)", floor, floor_mem)
for label, got in [("", mine)] + ([("other: ", theirs)] if theirs else []):
    line(label + "copy SQLite -> PostgreSQL (with checksums)", *got["copy"])
    line(label + "copy --no-verify", *got["copy_nv"])
    line(label + "import JSON -> PostgreSQL", *got["import"])
    line(label + "import JSON -> SQLite", *got["import_sqlite"], False)
    line(label + "export SQLite -> JSON", *got["export"], False)
line("python json.dump export", py, py_mem, False)
if loader:
    line("pgloader (data only)", loader[0], loader[1])
print(f"export is {py / mine['export'][0]:.1f} x faster than json.dump")
PY
