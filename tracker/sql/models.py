"""SQLAlchemy declarative models of tracker's tables. Only the SQL repository uses them.

The in-house tables (experiments, trials, ttpt_results) keep their names and columns; the rest is
tracker's: blobs (content-addressed, compressed strategy code and artifact bytes), tags and
artifacts of experiments and of trials, and trials' metrics per step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    @staticmethod
    def sqlite_text(value: datetime) -> str:
        """What this type stores on SQLite for an aware UTC datetime: the same text as its bind
        processor chain (naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff"), for the insert fast path."""
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class BlobRow(Base):
    """Bytes stored once per distinct content (SHA-256), compressed; ids are never reused."""

    __tablename__ = "blobs"
    __table_args__ = (CheckConstraint("codec IN ('zstd', 'none')", name="codec"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    codec: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("direction IN ('maximize', 'minimize')", name="direction"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    config: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[Any] = mapped_column(JSONType, nullable=True)
    objective: Mapped[str] = mapped_column(Text, server_default="sharpe")
    direction: Mapped[str] = mapped_column(Text, server_default="maximize")
    note: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=True)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("experiment_id", "trial_number"),
        Index("ix_trials_experiment_id_value", "experiment_id", "value"),
        CheckConstraint("trial_number >= 0", name="trial_number"),
        CheckConstraint("state IN ('complete', 'pruned', 'failed', 'running')", name="state"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(IdType, ForeignKey("experiments.id", ondelete="CASCADE"))
    trial_number: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[Any] = mapped_column(JSONType)
    performance: Mapped[Any] = mapped_column(JSONType)
    strategy_code_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    strategy_template: Mapped[str | None] = mapped_column(Text)
    generation_method: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(Text, server_default="complete")
    value: Mapped[float | None] = mapped_column(Double)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[Any] = mapped_column(JSONType, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)


class TTPTResultRow(Base):
    __tablename__ = "ttpt_results"
    __table_args__ = (
        CheckConstraint("num_violations >= 0", name="num_violations"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    num_violations: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    violations: Mapped[Any] = mapped_column(JSONType, nullable=True)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrialTagRow(Base):
    __tablename__ = "trial_tags"

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrialMetricRow(Base):
    """A trial's metric at one step; NULL is NaN (SQLite cannot hold NaN in a REAL)."""

    __tablename__ = "trial_metrics"

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)


class ExperimentArtifactRow(Base):
    __tablename__ = "experiment_artifacts"

    experiment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    media_type: Mapped[str] = mapped_column(Text)
    blob_id: Mapped[int] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrialArtifactRow(Base):
    __tablename__ = "trial_artifacts"

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    media_type: Mapped[str] = mapped_column(Text)
    blob_id: Mapped[int] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


blobs = cast(Table, BlobRow.__table__)
experiments = cast(Table, ExperimentRow.__table__)
trials = cast(Table, TrialRow.__table__)
ttpt_results = cast(Table, TTPTResultRow.__table__)
experiment_tags = cast(Table, ExperimentTagRow.__table__)
trial_tags = cast(Table, TrialTagRow.__table__)
trial_metrics = cast(Table, TrialMetricRow.__table__)
experiment_artifacts = cast(Table, ExperimentArtifactRow.__table__)
trial_artifacts = cast(Table, TrialArtifactRow.__table__)
