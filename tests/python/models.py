"""YogaFlow's models as the backend writes them with SQLAlchemy 2, from the schema contract
(../shared/yogaflow-schema.md): what the databases this tool adopts were made from."""

import datetime as dt
import os

from sqlalchemy import (
    JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
    String, Text, UniqueConstraint, false, func, text, true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL, as the contract says; YOGAFLOW_PLAIN_JSON=1 makes the backend that
# used plain JSON there (what `baseline --repair` converts).
JSONType = JSON() if os.environ.get("YOGAFLOW_PLAIN_JSON") else JSON().with_variant(JSONB, "postgresql")
DIFFICULTY = "difficulty IN ('beginner', 'intermediate', 'advanced')"

# YOGAFLOW_VARIANT (comma-separated), the models as other projects write them, for
# tests/variants.rs:
#   loose          as FastAPI tutorials and older projects do: Python-side defaults (no
#                  server_default), no CHECKs, unbounded String(), ForeignKey without ondelete;
#   autoincrement  every table with sqlite_autoincrement (ids of deleted rows never reused);
#   bool13         SQLAlchemy 1.3's Boolean: a CHECK (col IN (0, 1)) on SQLite.
VARIANTS = set(os.environ.get("YOGAFLOW_VARIANT", "").split(","))
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
    full_name: Mapped[str | None] = mapped_column(text_type(255))
    is_active: Mapped[bool] = mapped_column(BOOL, **default(true(), True))
    is_superuser: Mapped[bool] = mapped_column(BOOL, **default(false(), False))
    created_at = mapped_column(DateTime(timezone=True), nullable=False,
                               **default(func.now(), now_utc))
    updated_at = mapped_column(DateTime(timezone=True))


class Pose(Base):
    __tablename__ = "poses"
    __table_args__ = table_args(*checks(DIFFICULTY))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(text_type(255), unique=True)
    sanskrit_name: Mapped[str | None] = mapped_column(text_type(255))
    description: Mapped[str | None] = mapped_column(Text)
    difficulty: Mapped[str] = mapped_column(String(20), index=True)
    category: Mapped[str | None] = mapped_column(String(50))
    benefits = mapped_column(JSONType)
    # `metadata` is taken on a declarative class: the attribute has another name.
    meta = mapped_column("metadata", JSONType, nullable=False, **default(text("'{}'"), dict))
    image = mapped_column(LargeBinary)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at = mapped_column(DateTime(timezone=True), nullable=False,
                               **default(func.now(), now_utc))


class Sequence(Base):
    __tablename__ = "sequences"
    __table_args__ = table_args(*checks(DIFFICULTY))
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


class SequencePose(Base):
    __tablename__ = "sequence_poses"
    __table_args__ = table_args(UniqueConstraint("sequence_id", "position"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(fk("sequences.id", "CASCADE"))
    pose_id: Mapped[int] = mapped_column(fk("poses.id", "RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)


class PracticeSession(Base):
    __tablename__ = "practice_sessions"
    __table_args__ = table_args(*checks("rating >= 1 AND rating <= 5"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(fk("users.id", "CASCADE"), index=True)
    sequence_id: Mapped[int | None] = mapped_column(fk("sequences.id", "SET NULL"))
    started_at = mapped_column(DateTime(timezone=True), nullable=False)
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
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)


MODELS = [User, Pose, Sequence, SequencePose, PracticeSession, PracticeHistory]
