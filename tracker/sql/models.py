"""SQLAlchemy declarative models of the three tables. Only the SQL repository uses them."""

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
    MetaData,
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
    strategy_code: Mapped[str | None] = mapped_column(Text)
    strategy_template: Mapped[str | None] = mapped_column(Text)
    generation_method: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(Text, server_default="complete")
    value: Mapped[float | None] = mapped_column(Double)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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


experiments = cast(Table, ExperimentRow.__table__)
trials = cast(Table, TrialRow.__table__)
ttpt_results = cast(Table, TTPTResultRow.__table__)
