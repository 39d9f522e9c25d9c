"""YogaFlow's models as the backend writes them with SQLAlchemy 2, from the schema contract
(../shared/yogaflow-schema.md): what the databases this tool adopts were made from."""

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


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    is_superuser: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at = mapped_column(DateTime(timezone=True))


class Pose(Base):
    __tablename__ = "poses"
    __table_args__ = (CheckConstraint(DIFFICULTY),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    sanskrit_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    difficulty: Mapped[str] = mapped_column(String(20), index=True)
    category: Mapped[str | None] = mapped_column(String(50))
    benefits = mapped_column(JSONType)
    # `metadata` is taken on a declarative class: the attribute has another name.
    meta = mapped_column("metadata", JSONType, nullable=False, server_default=text("'{}'"))
    image = mapped_column(LargeBinary)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Sequence(Base):
    __tablename__ = "sequences"
    __table_args__ = (CheckConstraint(DIFFICULTY),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    difficulty: Mapped[str | None] = mapped_column(String(20))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(Boolean, server_default=false())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at = mapped_column(DateTime(timezone=True))


class SequencePose(Base):
    __tablename__ = "sequence_poses"
    __table_args__ = (UniqueConstraint("sequence_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    pose_id: Mapped[int] = mapped_column(ForeignKey("poses.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)


class PracticeSession(Base):
    __tablename__ = "practice_sessions"
    __table_args__ = (CheckConstraint("rating >= 1 AND rating <= 5"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id", ondelete="SET NULL"))
    started_at = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    completed: Mapped[bool] = mapped_column(Boolean, server_default=false())
    rating: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)


class PracticeHistory(Base):
    __tablename__ = "practice_history"
    __table_args__ = (Index("ix_practice_history_user_id_practiced_at", "user_id", "practiced_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("practice_sessions.id", ondelete="CASCADE"))
    pose_id: Mapped[int | None] = mapped_column(ForeignKey("poses.id", ondelete="SET NULL"))
    practiced_at = mapped_column(DateTime(timezone=True), nullable=False)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)


MODELS = [User, Pose, Sequence, SequencePose, PracticeSession, PracticeHistory]
