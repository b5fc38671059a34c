"""SQLAlchemy declarative models of tracker's tables. Only the SQL repository uses them.

The in-house tables (experiments, trials, ttpt_results) keep their names and columns; the rest is
tracker's: blobs (content-addressed, compressed strategy code and artifact bytes), tags and
artifacts of experiments and of trials, and trials' metrics per step.

On MariaDB and MySQL every table is InnoDB in utf8mb4 with a binary collation that does not pad
(names, tags and filters are exact and case-sensitive, as on SQLite and PostgreSQL; `utf8mb4_bin`
would make 'a' equal 'a '), free text is LONGTEXT, bytes LONGBLOB, timestamps DATETIME(6)."""

from __future__ import annotations

import math
import sys
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
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


MYSQL_DIALECTS = ("mysql", "mariadb")
"""SQLAlchemy's names for MySQL and MariaDB: `mariadb+pymysql://` URLs give "mariadb"."""
MARIADB_COLLATION = "utf8mb4_nopad_bin"
MYSQL_COLLATION = "utf8mb4_0900_bin"
"""Binary, case-sensitive collations without trailing-space padding, on MariaDB and on MySQL 8."""
MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{name}_{option}": value
    for name in MYSQL_DIALECTS
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", MARIADB_COLLATION))
}


@compiles(CreateTable, "mysql")
@compiles(CreateTable, "mariadb")
def _create_table(element: CreateTable, compiler: Any, **kw: Any) -> str:
    """MySQL 8 has no `utf8mb4_nopad_bin`; its binary collation without padding has another name."""
    sql: str = compiler.visit_create_table(element, **kw)
    if not getattr(compiler.dialect, "is_mariadb", False):
        sql = sql.replace(MARIADB_COLLATION, MYSQL_COLLATION)
    return sql


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive UTC text, MariaDB and
    MySQL naive UTC in a DATETIME(6))."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in MYSQL_DIALECTS:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" or dialect.name in MYSQL_DIALECTS else aware

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


class MySQLDouble(TypeDecorator[float]):
    """A DOUBLE on MariaDB and MySQL, which cannot hold infinities: +inf and -inf are stored as the
    largest finite doubles and read back as infinities (so the one value 1.7976931348623157e308
    reads back as inf there)."""

    impl = mysql.DOUBLE(asdecimal=False)
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> float | None:
        if value is not None and math.isinf(value):
            return math.copysign(sys.float_info.max, value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        if value is not None and abs(value) == sys.float_info.max:
            return math.copysign(math.inf, value)
        return None if value is None else float(value)


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
IdType = BigInteger().with_variant(Integer(), "sqlite")
TextType = Text().with_variant(mysql.LONGTEXT(), *MYSQL_DIALECTS)
"""TEXT holds 64 KiB on MySQL; free text may be 16 MiB."""
BytesType = LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL_DIALECTS)
FloatType: TypeEngine[float] = Double().with_variant(MySQLDouble(), *MYSQL_DIALECTS)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class BlobModel(Base):
    """Bytes stored once per distinct content (SHA-256), compressed; ids are never reused."""

    __tablename__ = "blobs"
    __table_args__ = (
        CheckConstraint("codec IN ('zstd', 'none')", name="codec"),
        {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    codec: Mapped[str] = mapped_column(TextType)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(BytesType)


class ExperimentModel(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("direction IN ('maximize', 'minimize')", name="direction"),
        {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(TextType)
    template: Mapped[str] = mapped_column(TextType)
    mode: Mapped[str] = mapped_column(TextType)
    config: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[Any] = mapped_column(JSONType, nullable=True)
    objective: Mapped[str] = mapped_column(TextType, server_default="sharpe")
    direction: Mapped[str] = mapped_column(TextType, server_default="maximize")
    note: Mapped[str | None] = mapped_column(TextType)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=True)


class TrialModel(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("experiment_id", "trial_number"),
        Index("ix_trials_experiment_id_value", "experiment_id", "value"),
        CheckConstraint("trial_number >= 0", name="trial_number"),
        CheckConstraint("state IN ('complete', 'pruned', 'failed', 'running')", name="state"),
        {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(IdType, ForeignKey("experiments.id", ondelete="CASCADE"))
    trial_number: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[Any] = mapped_column(JSONType)
    performance: Mapped[Any] = mapped_column(JSONType)
    strategy_code_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    strategy_template: Mapped[str | None] = mapped_column(TextType)
    generation_method: Mapped[str | None] = mapped_column(TextType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(TextType, server_default="complete")
    value: Mapped[float | None] = mapped_column(FloatType)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[Any] = mapped_column(JSONType, nullable=True)
    note: Mapped[str | None] = mapped_column(TextType)


class TTPTResultModel(Base):
    __tablename__ = "ttpt_results"
    __table_args__ = (
        CheckConstraint("num_violations >= 0", name="num_violations"),
        {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    num_violations: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    violations: Mapped[Any] = mapped_column(JSONType, nullable=True)


class ExperimentTagModel(Base):
    __tablename__ = "experiment_tags"
    __table_args__ = MYSQL_TABLE_OPTIONS

    experiment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(TextType)


class TrialTagModel(Base):
    __tablename__ = "trial_tags"
    __table_args__ = MYSQL_TABLE_OPTIONS

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(TextType)


class TrialMetricModel(Base):
    """A trial's metric at one step; NULL is NaN (SQLite cannot hold NaN in a REAL)."""

    __tablename__ = "trial_metrics"
    __table_args__ = MYSQL_TABLE_OPTIONS

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(FloatType)


class TrialReturnsModel(Base):
    """A trial's returns series: its values byte-shuffled and zstd'd (`tracker.store.returns`), its
    index a blob (stored once per distinct index; NULL for positions 0..T-1)."""

    __tablename__ = "trial_returns"
    __table_args__ = MYSQL_TABLE_OPTIONS

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    length: Mapped[int] = mapped_column(BigInteger)
    index_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    codec: Mapped[str] = mapped_column(TextType)
    data: Mapped[bytes] = mapped_column(BytesType)


class TrialPerformanceModel(Base):
    """The numbers among a trial's top-level performance metrics, one row per metric (`key`, its
    name), for sorting trials by a metric on an index (`tracker.sql.performance`). Written with
    the trial (trials never change their performance), deleted with the experiment by
    `delete_experiment` (no foreign key: its check per row cost a fifth of the writes). One B-tree
    on SQLite (WITHOUT ROWID) and InnoDB (clustered)."""

    __tablename__ = "trial_performance"
    __table_args__ = ({"sqlite_with_rowid": False, **MYSQL_TABLE_OPTIONS},)

    experiment_id: Mapped[int] = mapped_column(IdType, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(FloatType, primary_key=True)
    trial_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class ExperimentArtifactModel(Base):
    __tablename__ = "experiment_artifacts"
    __table_args__ = MYSQL_TABLE_OPTIONS

    experiment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    media_type: Mapped[str] = mapped_column(TextType)
    blob_id: Mapped[int] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrialArtifactModel(Base):
    __tablename__ = "trial_artifacts"
    __table_args__ = MYSQL_TABLE_OPTIONS

    trial_id: Mapped[int] = mapped_column(IdType, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    media_type: Mapped[str] = mapped_column(TextType)
    blob_id: Mapped[int] = mapped_column(IdType, ForeignKey("blobs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


blobs = cast(Table, BlobModel.__table__)
experiments = cast(Table, ExperimentModel.__table__)
trials = cast(Table, TrialModel.__table__)
ttpt_results = cast(Table, TTPTResultModel.__table__)
experiment_tags = cast(Table, ExperimentTagModel.__table__)
trial_tags = cast(Table, TrialTagModel.__table__)
trial_metrics = cast(Table, TrialMetricModel.__table__)
trial_returns = cast(Table, TrialReturnsModel.__table__)
trial_performance = cast(Table, TrialPerformanceModel.__table__)
experiment_artifacts = cast(Table, ExperimentArtifactModel.__table__)
trial_artifacts = cast(Table, TrialArtifactModel.__table__)
