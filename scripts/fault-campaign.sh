#!/usr/bin/env bash
# Fault campaign behind RELIABILITY.md: kills and signals at random moments of real runs
# (release build) against a throwaway PostgreSQL and SQLite files, each followed by a check
# that nothing was half-done and that the password never showed. Prints one line per fault
# kind: runs, outcomes, violations. Asserts nothing; not part of CI (the tests are).
#   scripts/fault-campaign.sh [RUNS]   (default 20 per fault kind)
set -euo pipefail
runs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/yogaflow-migrate"
# shellcheck source=scripts/pg.sh
. "$root/scripts/pg.sh"
secret='Fault-Camp4ign-Pw'
start_pg --password "$secret"
python3 - "$runs" "$bin" "$port" "$work" "$secret" <<'PY'
import os, random, signal, sqlite3, subprocess, sys, tempfile, time
runs, binary, port, work, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
random.seed(int(os.environ.get("SEED", "1")))
def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-X", "-A", "-t", "-q", "-h", work, "-p", port, "-U", "postgres", "-d", db,
                           "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()
n = [0]
def pg_db():
    n[0] += 1
    db = f"f{n[0]}"
    psql(f"CREATE DATABASE {db}")
    return db, f"postgresql://postgres:{secret}@127.0.0.1:{port}/{db}"
def run(args, url, **kw):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([binary] + args, env=env, capture_output=True, text=True, **kw)
def start(args, url):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.Popen([binary] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
results = []
def record(kind, outcomes, violations):
    results.append((kind, outcomes, violations))

def big_source():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "src.db")
    run(["up"], f"sqlite:///{path}").check_returncode()
    c = sqlite3.connect(path)
    c.execute("INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h')")
    c.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
              "INSERT INTO practice_history (id, user_id, practiced_at, notes) SELECT i, 1, '2025-12-06 10:11:12', 'r' || i FROM n")
    c.commit(); c.close()
    return path

def fresh_url(dialect):
    return pg_db()[1] if dialect == "pg" else f"sqlite:///{tempfile.mkdtemp()}/y.db"

def duration(args, url):
    t = time.perf_counter()
    run(args, url).check_returncode()
    return time.perf_counter() - t

def kill_up(dialect, sig):
    # Signals land at a uniformly random moment of a run as long as an undisturbed one.
    span = duration(["up"], fresh_url(dialect))
    outcomes, bad = {}, 0
    for i in range(runs):
        url = fresh_url(dialect)
        p = start(["up"], url)
        time.sleep(random.uniform(0, span))
        p.send_signal(sig)
        out, err = p.communicate()
        outcomes[p.returncode] = outcomes.get(p.returncode, 0) + 1
        again = run(["up"], url)
        verify = run(["verify"], url)
        if again.returncode != 0 or verify.returncode != 0 or secret in out + err + again.stderr + verify.stdout:
            bad += 1
        if sig == signal.SIGTERM and p.returncode == 0 and "terminated" in err:
            bad += 1
    return outcomes, bad

def signal_load(command, dest, sig):
    # The first round measures an undisturbed run; the others are signalled within its span.
    src = big_source()
    export = os.path.join(tempfile.mkdtemp(), "x.json")
    run(["export", "--out", export], f"sqlite:///{src}").check_returncode()
    outcomes, bad = {}, 0
    span = None
    for i in range(runs + 1):
        if dest == "pg":
            db, url = pg_db()
            run(["up"], url).check_returncode()
            psql("INSERT INTO users (email, hashed_password) SELECT 'u' || i, 'h' FROM generate_series(1, 50) i", db)
            count = lambda t: int(psql(f"SELECT count(*) FROM {t}", db))
        else:
            path = f"{tempfile.mkdtemp()}/t.db"
            url = f"sqlite:///{path}"
            run(["up"], url).check_returncode()
            c = sqlite3.connect(path)
            c.executemany("INSERT INTO users (email, hashed_password) VALUES (?, 'h')", [(f"u{i}",) for i in range(50)])
            c.commit(); c.close()
            count = lambda t: sqlite3.connect(path).execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        args = ["copy", "--from", f"sqlite:///{src}", "--replace"] if command == "copy" else ["import", export, "--replace"]
        if span is None:
            span = duration(args, url)
            continue
        p = start(args, url)
        time.sleep(random.uniform(0, span))
        p.send_signal(sig)
        out, err = p.communicate()
        outcomes[p.returncode] = outcomes.get(p.returncode, 0) + 1
        users, history = count("users"), count("practice_history")
        untouched = (users, history) == (50, 0)
        complete = (users, history) == (1, 300000)
        # All or nothing; a success is always complete (a signal after COMMIT may end a complete
        # load with 143 or -9: that is not half-done).
        if not (untouched or complete) or (p.returncode == 0 and not complete) or secret in out + err:
            bad += 1
        # The next insert without an id works: sequences never behind the rows.
        if dest == "pg":
            try:
                psql("INSERT INTO users (email, hashed_password) VALUES ('next@x', 'h')", db)
            except subprocess.CalledProcessError:
                bad += 1
    return outcomes, bad

for dialect in ["pg", "sqlite"]:
    for sig in [signal.SIGKILL, signal.SIGTERM]:
        o, b = kill_up(dialect, sig)
        record(f"{sig.name} at a random moment of `up` ({'PostgreSQL' if dialect == 'pg' else 'SQLite'})", o, b)
for command, dest in [("copy", "pg"), ("import", "pg"), ("import", "sqlite")]:
    for sig in [signal.SIGKILL, signal.SIGTERM]:
        o, b = signal_load(command, dest, sig)
        record(f"{sig.name} during `{command} --replace` into {'PostgreSQL' if dest == 'pg' else 'SQLite'}", o, b)

print(f"{'fault':<58}{'runs':>6}  {'exit codes seen':<22}{'violations':>10}")
for kind, outcomes, bad in results:
    seen = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    print(f"{kind:<58}{sum(outcomes.values()):>6}  {seen:<22}{bad:>10}")
PY
