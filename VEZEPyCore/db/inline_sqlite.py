"""Hot reads on SQLite without the async driver: a compiled Core statement on a stdlib connection.

aiosqlite hands every call to a thread and back; for an indexed read of a few dozen rows that
hop costs more than the query. An `InlineReader` keeps one read-only stdlib connection per
process and runs compiled statements on the event loop itself, which is what a hand-written
sqlite3 endpoint does. The statements stay SQLAlchemy Core built from the models, and the column
types' own bind and result processors convert values, so what comes out equals the async path.

Only for short, index-backed reads: a statement here blocks the event loop while it runs.
WAL mode (set at start-up) lets this reader run beside the service's writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeEngine

from VEZEPyCore.db.types import UTCDateTime

_DIALECT = sqlite.dialect()
Processor = Callable[[Any], Any] | None


def _utc_datetime(value: str) -> datetime:
    # What UTCDateTime's processors do on SQLite (stored as naive UTC), in one C call.
    return datetime.fromisoformat(value + "+00:00")


def _result_converter(column_type: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """The column type's result conversion; the common types' through faster equivalents.

    The generic processors cost more than the query for a page of rows; these give equal
    values (a test compares the inline and async paths' output).
    """
    if isinstance(column_type, UTCDateTime):
        return _utc_datetime
    if isinstance(column_type, JSON):
        return orjson.loads
    if isinstance(column_type, Boolean):
        return bool
    processor: Callable[[Any], Any] | None = column_type.dialect_impl(_DIALECT).result_processor(
        _DIALECT, None
    )
    return processor


class InlineQuery:
    """A Core SELECT compiled once for SQLite, with its parameters' and columns' converters."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = compiled.string
        self._names: Sequence[str] = tuple(compiled.positiontup or ())
        self._defaults = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required
        }
        self._bind_processors: dict[str, Processor] = {
            name: bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            for name, bind in compiled.binds.items()
        }
        # Only the columns that need converting, each with its converter.
        self._converters: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (index, converter)
            for index, column in enumerate(statement.selected_columns)
            if (converter := _result_converter(column.type)) is not None
        )
        self.columns: tuple[str, ...] = tuple(
            column.key or column.name for column in statement.selected_columns
        )

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in self._names:
            value = values[name] if name in values else self._defaults[name]
            processor = self._bind_processors[name]
            out.append(processor(value) if processor is not None else value)
        return out

    def convert(self, row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for index, converter in self._converters:
            if values[index] is not None:
                values[index] = converter(values[index])
        return values


class InlineReader:
    """One read-only stdlib connection to the service's SQLite file, used on the event loop."""

    def __init__(self, database: Path) -> None:
        # mode=ro: this connection can never write, whatever statement reaches it.
        self._connection = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro",
            uri=True,
            check_same_thread=False,
            isolation_level=None,
            cached_statements=128,
        )
        # A checkpoint can hold the WAL index briefly; wait a little rather than fail.
        self._connection.execute("PRAGMA busy_timeout=2000")

    @classmethod
    def for_url(cls, url: str) -> InlineReader | None:
        """A reader for a file-backed SQLite URL; None for other databases."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return cls(Path(parsed.database))

    def fetch(self, query: InlineQuery, values: Mapping[str, Any]) -> list[list[Any]]:
        rows = self._connection.execute(query.sql, query.parameters(values)).fetchall()
        return [query.convert(row) for row in rows]

    def close(self) -> None:
        self._connection.close()
