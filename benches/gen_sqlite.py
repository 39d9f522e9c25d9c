#!/usr/bin/env python3
"""Generates a realistic YogaFlow SQLite development database for the transfer benchmark.

Usage: gen_sqlite.py PATH SCALE   (the file must already be migrated by yogaflow-migrate)
Scale 1 is about 1M rows and 90 MB: 20k users, 300 poses with images, 10k sequences,
100k sequence_poses, 200k practice_sessions, 670k practice_history. Rows are written the way
SQLAlchemy writes them (timestamps as text with microseconds, booleans 0/1, JSON via json.dumps).
"""
import datetime
import json
import random
import sqlite3
import sys

path, scale = sys.argv[1], float(sys.argv[2])
rnd = random.Random(42)
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode = OFF")
db.execute("PRAGMA synchronous = OFF")
base = datetime.datetime(2024, 1, 1)


def ts(i):
    return (base + datetime.timedelta(seconds=i * 37, microseconds=i % 1000000)).strftime("%Y-%m-%d %H:%M:%S.%f")


n_users, n_poses = int(20000 * scale), 300
n_seq, n_sp = int(10000 * scale), int(100000 * scale)
n_sessions, n_history = int(200000 * scale), int(670000 * scale)
levels = ["beginner", "intermediate", "advanced"]

db.executemany(
    "INSERT INTO users VALUES (?,?,?,?,?,?,?,?)",
    ((i, f"user{i}@example.com", "$2b$12$" + "x" * 53, f"User {i} Ünïcode", 1, int(i % 100 == 0), ts(i), None if i % 3 else ts(i + 5))
     for i in range(1, n_users + 1)),
)
db.executemany(
    "INSERT INTO poses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    ((i, f"Pose {i}", f"Asana {i}", "A pose. " * 20, levels[i % 3], "standing", json.dumps(["balance", "focus"]),
      json.dumps({"tier": i % 5, "tags": ["a", "b"]}), rnd.randbytes(50000), 30 + i % 60, ts(i))
     for i in range(1, n_poses + 1)),
)
db.executemany(
    "INSERT INTO sequences VALUES (?,?,?,?,?,?,?,?,?)",
    ((i, f"Sequence {i}", "Flow" if i % 2 else None, levels[i % 3], 20 + i % 40, i % 2,
      None if i % 10 == 0 else 1 + i % n_users, ts(i), None) for i in range(1, n_seq + 1)),
)
db.executemany(
    "INSERT INTO sequence_poses VALUES (?,?,?,?,?)",
    ((i, 1 + (i - 1) // 10, 1 + i % n_poses, (i - 1) % 10, 30) for i in range(1, n_sp + 1)),
)
db.executemany(
    "INSERT INTO practice_sessions VALUES (?,?,?,?,?,?,?,?,?)",
    ((i, 1 + i % n_users, None if i % 7 == 0 else 1 + i % n_seq, ts(i), ts(i + 1800), 1800, 1,
      1 + (i % 9) / 2, "felt good" if i % 4 == 0 else None) for i in range(1, n_sessions + 1)),
)
db.executemany(
    "INSERT INTO practice_history VALUES (?,?,?,?,?,?,?)",
    ((i, 1 + i % n_users, 1 + i % n_sessions, 1 + i % n_poses, ts(i), 30.5 + i % 60, None if i % 5 else "note")
     for i in range(1, n_history + 1)),
)
db.commit()
total = n_users + n_poses + n_seq + n_sp + n_sessions + n_history
print(f"{total} rows")
