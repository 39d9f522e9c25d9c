"""The Python backend's side of tests/adopt.rs, through SQLAlchemy 2's async engine (asyncpg on
PostgreSQL, aiosqlite on SQLite), as the real backend talks to its database.

    backend.py create-all URL    Base.metadata.create_all
    backend.py alembic URL       alembic upgrade head (one initial revision)
    backend.py seed URL          ORM objects: non-ASCII text, JSON, blobs, time zones, NULLs
    backend.py insert URL        one ORM object per table without an id; prints the new ids
    backend.py dump URL          every ORM object of every table as JSON, for comparing
"""

import asyncio
import datetime as dt
import hashlib
import json
import os
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from models import (  # noqa: E402
    MODELS, Base, Pose, PracticeHistory, PracticeSession, Sequence, SequencePose, User,
)

UTC = dt.timezone.utc


async def create_all(url):
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


def alembic(url):
    from alembic import command
    from alembic.config import Config

    os.environ["DATABASE_URL"] = url
    command.upgrade(Config(os.path.join(HERE, "alembic.ini")), "head")


async def seed(url):
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        zoe = User(email="zoë@example.com", hashed_password="h$1",
                   full_name='Zoë 🧘‍♀️ "quoted" \\back\\slash \'single\'')
        rtl = User(email="rtl@example.com", hashed_password="h", full_name="مرحبا بالعالم",
                   is_active=False, updated_at=dt.datetime(2025, 12, 6, 8, 11, 12, 123456, UTC))
        s.add_all([zoe, rtl])
        tree = Pose(name="Tree", sanskrit_name="Vrikshasana", description="line1\nline2\ttab",
                    difficulty="beginner", category="balance", benefits=["focus", "ünïcode"],
                    meta={"b": 1, "a": [1.5, None, True], "nested": {"z": "x"}},
                    image=bytes(range(256)) * 64, duration_seconds=60)
        crow = Pose(name="Crow", difficulty="advanced", benefits=None)
        s.add_all([tree, crow])
        await s.flush()
        morning = Sequence(name="Morning", difficulty="beginner", duration_minutes=20,
                           is_public=True, user_id=zoe.id)
        builtin = Sequence(name="Built-in", description="no owner")
        s.add_all([morning, builtin])
        await s.flush()
        s.add_all([
            SequencePose(sequence_id=morning.id, pose_id=tree.id, position=1, duration_seconds=30),
            SequencePose(sequence_id=morning.id, pose_id=crow.id, position=2),
        ])
        session = PracticeSession(user_id=zoe.id, sequence_id=morning.id,
                                  started_at=dt.datetime(2025, 12, 6, 7, 0, 0, 500000, UTC),
                                  completed_at=dt.datetime(2025, 12, 6, 7, 30, tzinfo=UTC),
                                  duration_seconds=1800, completed=True, rating=4.75,
                                  notes="great")
        s.add(session)
        await s.flush()
        s.add_all([
            PracticeHistory(user_id=zoe.id, session_id=session.id, pose_id=tree.id,
                            practiced_at=dt.datetime(2025, 12, 6, 7, 5, 0, 999999, UTC),
                            duration_seconds=1.7976931348623157e308, notes="max float"),
            PracticeHistory(user_id=rtl.id, practiced_at=dt.datetime(2025, 12, 6, 7, 6, tzinfo=UTC),
                            duration_seconds=-0.1),
        ])
        await s.commit()
    await engine.dispose()


async def insert(url):
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        user = User(email=f"new-{os.getpid()}@example.com", hashed_password="h")
        pose = Pose(name=f"New pose {os.getpid()}", difficulty="intermediate")
        s.add_all([user, pose])
        await s.flush()
        seq = Sequence(name="New", user_id=user.id)
        s.add(seq)
        await s.flush()
        sp = SequencePose(sequence_id=seq.id, pose_id=pose.id, position=1)
        ps = PracticeSession(user_id=user.id, started_at=dt.datetime.now(UTC), rating=3)
        s.add_all([sp, ps])
        await s.flush()
        ph = PracticeHistory(user_id=user.id, session_id=ps.id, practiced_at=dt.datetime.now(UTC))
        s.add(ph)
        await s.commit()
        ids = {o.__tablename__: o.id for o in [user, pose, seq, sp, ps, ph]}
    await engine.dispose()
    print(json.dumps(ids))


def plain(value):
    if isinstance(value, dt.datetime):
        # SQLite hands back naive datetimes: the contract's timestamps are UTC.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return f"{len(value)} bytes sha256 {hashlib.sha256(value).hexdigest()}"
    if isinstance(value, float):
        return repr(value)
    return value


async def dump(url):
    engine = create_async_engine(url)
    out = {}
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        for model in MODELS:
            rows = (await s.execute(select(model).order_by(model.id))).scalars().all()
            out[model.__tablename__] = [
                {a.key: plain(getattr(row, a.key)) for a in model.__mapper__.column_attrs}
                for row in rows
            ]
    await engine.dispose()
    print(json.dumps(out, sort_keys=True, ensure_ascii=False))


def main():
    command, url = sys.argv[1], sys.argv[2]
    if command == "alembic":
        alembic(url)
    else:
        asyncio.run({"create-all": create_all, "seed": seed, "insert": insert, "dump": dump}[command](url))


if __name__ == "__main__":
    main()
