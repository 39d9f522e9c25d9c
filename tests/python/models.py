"""YogaFlow's models as the backend writes them with SQLAlchemy 2, from the schema contract
(../shared/yogaflow-schema.md): what the databases this tool adopts were made from."""

import datetime as dt
import os

from sqlalchemy import (
    JSON, BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
    String, Text, UniqueConstraint, false, func, text, true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL, as the contract says; YOGAFLOW_PLAIN_JSON=1 makes the backend that
# used plain JSON there (what `baseline --repair` converts).
JSONType = JSON() if os.environ.get("YOGAFLOW_PLAIN_JSON") else JSON().with_variant(JSONB, "postgresql")
DIFFICULTY = "difficulty IN ('beginner', 'intermediate', 'advanced')"
NEXT_DIFFICULTY = "difficulty IN ('beginner', 'intermediate', 'advanced', 'expert')"

# YOGAFLOW_VARIANT (comma-separated), the models as other projects write them, for
# tests/variants.rs:
#   loose          as FastAPI tutorials and older projects do: Python-side defaults (no
#                  server_default), no CHECKs, unbounded String(), ForeignKey without ondelete;
#   autoincrement  every table with sqlite_autoincrement (ids of deleted rows never reused);
#   bool13         SQLAlchemy 1.3's Boolean: a CHECK (col IN (0, 1)) on SQLite.
#   next           the models a week later, for tests/generate.rs: every kind of change
#                  `new --from` writes (a table added; columns added, dropped, renamed with
#                  their data, retyped, given defaults, made NOT NULL or nullable; checks,
#                  uniques, indexes and foreign keys added, dropped and changed);
#   next2          `next`, then the table it added dropped again.
VARIANTS = set(os.environ.get("YOGAFLOW_VARIANT", "").split(","))
NEXT2 = "next2" in VARIANTS
NEXT = "next" in VARIANTS or NEXT2
LOOSE = "loose" in VARIANTS
AUTOINCREMENT = "autoincrement" in VARIANTS
BOOL = Boolean(create_constraint=True) if "bool13" in VARIANTS else Boolean


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


def default(server, python):
    """A column default: on the server, or (loose) only in Python."""
    return {"default": python} if LOOSE else {"server_default": server}


def text_type(n):
    return String() if LOOSE else String(n)


def fk(target, ondelete):
    return ForeignKey(target) if LOOSE else ForeignKey(target, ondelete=ondelete)


def checks(*sql):
    return () if LOOSE else tuple(CheckConstraint(c) for c in sql)


def table_args(*items):
    """__table_args__: the items, and the variant's table options."""
    return items + (({"sqlite_autoincrement": True},) if AUTOINCREMENT else ())


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = table_args()
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(text_type(255), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(text_type(255))
    # next: renamed display_name (its data kept) and longer.
    full_name: Mapped[str | None] = (mapped_column("display_name", String(300)) if NEXT
                                     else mapped_column(text_type(255)))
    if NEXT:
        timezone = mapped_column(String(64), nullable=False, server_default="UTC")
    is_active: Mapped[bool] = mapped_column(BOOL, **default(true(), True))
    is_superuser: Mapped[bool] = mapped_column(BOOL, **default(false(), False))
    created_at = mapped_column(DateTime(timezone=True), nullable=False,
                               **default(func.now(), now_utc))
    updated_at = mapped_column(DateTime(timezone=True))


class Pose(Base):
    __tablename__ = "poses"
    __table_args__ = table_args(*checks(NEXT_DIFFICULTY if NEXT else DIFFICULTY))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # next: no longer unique; sanskrit_name indexed; category dropped.
    name: Mapped[str] = mapped_column(text_type(255), unique=not NEXT)
    sanskrit_name: Mapped[str | None] = mapped_column(text_type(255), index=NEXT)
    description: Mapped[str | None] = mapped_column(Text)
    difficulty: Mapped[str] = mapped_column(String(20), index=True)
    if not NEXT:
        category: Mapped[str | None] = mapped_column(String(50))
    benefits = mapped_column(JSONType)
    # `metadata` is taken on a declarative class: the attribute has another name.
    meta = mapped_column("metadata", JSONType, nullable=False, **default(text("'{}'"), dict))
    image = mapped_column(LargeBinary)
    # next: a server default.
    duration_seconds: Mapped[int | None] = mapped_column(
        Integer, **({"server_default": "60"} if NEXT else {}))
    created_at = mapped_column(DateTime(timezone=True), nullable=False,
                               **default(func.now(), now_utc))


class Sequence(Base):
    __tablename__ = "sequences"
    # next: a sequence's name is unique per user; a parent sequence.
    __table_args__ = table_args(*checks(DIFFICULTY),
                                *((UniqueConstraint("user_id", "name"),) if NEXT else ()))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(text_type(255))
    description: Mapped[str | None] = mapped_column(Text)
    difficulty: Mapped[str | None] = mapped_column(String(20))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(BOOL, **default(false(), False))
    user_id: Mapped[int | None] = mapped_column(fk("users.id", "CASCADE"))
    created_at = mapped_column(DateTime(timezone=True), nullable=False,
                               **default(func.now(), now_utc))
    updated_at = mapped_column(DateTime(timezone=True))
    if NEXT:
        parent_id = mapped_column(ForeignKey("sequences.id", ondelete="SET NULL"))


class SequencePose(Base):
    __tablename__ = "sequence_poses"
    __table_args__ = table_args(UniqueConstraint("sequence_id", "position"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(fk("sequences.id", "CASCADE"))
    # next: deleting a pose deletes it from sequences; durations in a bigint.
    pose_id: Mapped[int] = mapped_column(fk("poses.id", "CASCADE" if NEXT else "RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(BigInteger if NEXT else Integer)


class PracticeSession(Base):
    __tablename__ = "practice_sessions"
    # next: durations are never negative; no index on user_id; started_at may be unknown.
    __table_args__ = table_args(*checks("rating >= 1 AND rating <= 5",
                                        *(("duration_seconds >= 0",) if NEXT else ())))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(fk("users.id", "CASCADE"), index=not NEXT)
    sequence_id: Mapped[int | None] = mapped_column(fk("sequences.id", "SET NULL"))
    started_at = mapped_column(DateTime(timezone=True), nullable=NEXT)
    completed_at = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    completed: Mapped[bool] = mapped_column(BOOL, **default(false(), False))
    rating: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)


class PracticeHistory(Base):
    __tablename__ = "practice_history"
    __table_args__ = table_args(
        Index("ix_practice_history_user_id_practiced_at", "user_id", "practiced_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(fk("users.id", "CASCADE"))
    session_id: Mapped[int | None] = mapped_column(fk("practice_sessions.id", "CASCADE"))
    pose_id: Mapped[int | None] = mapped_column(fk("poses.id", "SET NULL"))
    practiced_at = mapped_column(DateTime(timezone=True), nullable=False)
    # next: NOT NULL, 0 by default.
    duration_seconds: Mapped[float | None] = mapped_column(
        Float, **({"nullable": False, "server_default": "0"} if NEXT else {}))
    notes: Mapped[str | None] = mapped_column(Text)


MODELS = [User, Pose, Sequence, SequencePose, PracticeSession, PracticeHistory]

if NEXT and not NEXT2:
    class PoseTag(Base):
        """next: a table added (next2 drops it again)."""
        __tablename__ = "pose_tags"
        __table_args__ = (UniqueConstraint("pose_id", "tag"),)
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        pose_id: Mapped[int] = mapped_column(ForeignKey("poses.id", ondelete="CASCADE"),
                                             index=True)
        tag: Mapped[str] = mapped_column(String(50))
        created_at = mapped_column(DateTime(timezone=True), nullable=False,
                                   server_default=func.now())

    MODELS.append(PoseTag)
