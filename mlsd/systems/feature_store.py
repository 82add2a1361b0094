"""A feature store on SQLite: tables written by batch jobs, read by key at request time, timed.

A serving path reads precomputed values by key: a user's attributes, the ads of a request, the
candidates computed last night for a user, a prediction for a (user, topic, hour) key. This
module is the smallest honest version of that store: a real SQLite file, each table keyed by
its primary key and stored ``WITHOUT ROWID`` (the rows live in the key's B-tree, so a lookup by
key, or a range scan on a key prefix, is one descent of one tree), and every read timed.

- :meth:`FeatureStore.write` -- a batch job (re)writes a table from a data frame;
- :meth:`FeatureStore.lookup` -- rows whose key columns equal given values (a point lookup, or
  a range scan on a prefix of the key: all the candidates of one user);
- :meth:`FeatureStore.lookup_in` -- rows for a list of keys, in the list's order, an unknown
  key being an error (the ads of a request);
- :meth:`FeatureStore.count`, :meth:`FeatureStore.size_bytes`, :attr:`FeatureStore.timings`.

Conventions: missing values (NaN, None) are stored as SQL NULL and read back as ``None``;
NumPy scalars are converted to Python numbers; column names are checked against the table, so
no caller's string reaches SQL unchecked. Rows are inserted in key order, so the same rows give
the same file, byte for byte. A production store (Redis, Cassandra, a managed feature store) adds
replication and a network hop; the access patterns are the same.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SQLiteStore", "FeatureStore"]

_CHUNK = 500  # keys per IN (...) query: well under SQLite's limit on bound variables


def _python(value):
    """A value SQLite can bind: NumPy scalars to Python numbers, NaN to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _sql_type(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return "INTEGER"
    if pd.api.types.is_float_dtype(dtype):
        return "REAL"
    return "TEXT"


class SQLiteStore:
    """A store in one SQLite database at ``path``: opened on creation, closed by :meth:`close`.

    The base of the book's stores (this feature store, chapter 6's blur store, chapter 8's
    review queue): ``schema``, a script of SQL statements, is run once on opening (``CREATE
    ... IF NOT EXISTS`` keeps an existing file's tables). ``":memory:"`` keeps the database in
    memory. Use it as a context manager, or call :meth:`close`.

    SQLite's Python driver refuses a connection made in another thread; ``shared=True`` allows
    it, for a web server's worker threads, and the caller then lets one thread at a time use
    the store (a lock around each request).
    """

    def __init__(self, path, schema: str = "", *, shared: bool = False):
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
        if not isinstance(shared, bool):
            raise TypeError(f"shared must be True or False, got {shared!r}")
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=not shared)
        if schema:
            self._db.executescript(schema)

    def close(self) -> None:
        """Close the connection (a file stays)."""
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FeatureStore(SQLiteStore):
    """Tables of features in one SQLite file, written whole and read by key.

    Parameters
    ----------
    path : str or pathlib.Path
        The SQLite file (created if missing). ``":memory:"`` keeps it in memory.
    shared : bool
        Let other threads use the connection, one at a time (see :class:`SQLiteStore`).

    Attributes
    ----------
    timings : dict[str, list[float]]
        The seconds each lookup took, per table, in the order they ran.
    """

    def __init__(self, path, *, shared: bool = False):
        super().__init__(path, shared=shared)
        self.timings: dict[str, list[float]] = defaultdict(list)

    # ------------------------------------------------------------------ schema
    def _columns(self, table: str) -> list[str]:
        if not isinstance(table, str):
            raise TypeError(f"table must be a str, got {type(table).__name__}")
        rows = self._db.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        if not rows:
            raise ValueError(f"no table {table!r} in the store")
        return [row[1] for row in rows]

    def _check_columns(self, table: str, columns) -> list[str]:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"columns must be a list of column names, got {columns!r}")
        known = self._columns(table)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"unknown columns {unknown} in table {table!r} (it has {known})")
        return list(columns)

    # ------------------------------------------------------------------ writing
    def write(self, table: str, frame: pd.DataFrame, key) -> None:
        """(Re)create ``table`` from ``frame``, with primary key ``key`` (a list of columns).

        The table is dropped if it exists (a batch job rewrites it whole), created with one
        column per column of ``frame`` (integer and bool columns as INTEGER, float as REAL,
        anything else as TEXT) and ``PRIMARY KEY (key) WITHOUT ROWID``, and filled in key
        order. NaN and None become NULL. Raises ``ValueError`` if a key column is missing,
        holds a missing value or the key has duplicates.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        if isinstance(key, str):
            key = [key]
        key = list(key)
        if not key or any(k not in frame.columns for k in key):
            raise ValueError(f"key must name columns of the frame {list(frame.columns)}, got {key}")
        if frame[key].isna().any().any():
            raise ValueError(f"the key columns {key} must have no missing values")
        duplicated = frame.duplicated(key)
        if duplicated.any():
            first = frame.loc[duplicated, key].iloc[0].tolist()
            raise ValueError(f"the key {key} must be unique, {first} appears more than once")
        columns = ", ".join(f"{_quote(c)} {_sql_type(t)}" for c, t in frame.dtypes.items())
        primary = ", ".join(_quote(k) for k in key)
        rows = frame.sort_values(key, kind="stable").astype(object)
        rows = rows.where(rows.notna(), None).itertuples(index=False, name=None)
        with self._db:
            self._db.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
            self._db.execute(f"CREATE TABLE {_quote(table)} ({columns}, PRIMARY KEY ({primary}))"
                             " WITHOUT ROWID")
            marks = ", ".join("?" * frame.shape[1])
            self._db.executemany(f"INSERT INTO {_quote(table)} VALUES ({marks})",
                                 ([_python(v) for v in row] for row in rows))

    # ------------------------------------------------------------------ reading
    def lookup(self, table: str, columns, **equal) -> list[tuple]:
        """The ``columns`` of the rows of ``table`` whose columns equal ``equal``'s values.

        ``store.lookup("candidates", ["video_id"], user_id=7)`` is a range scan of the rows
        of user 7 (in key order when ``user_id`` leads the key); with every key column given it
        is a point lookup, returning one row or none. Returns a list of tuples; timed into
        ``timings[table]``.
        """
        select = ", ".join(_quote(c) for c in self._check_columns(table, columns))
        where = self._check_columns(table, list(equal))
        sql = f"SELECT {select} FROM {_quote(table)}"
        if where:
            sql += " WHERE " + " AND ".join(f"{_quote(c)} = ?" for c in where)
        start = time.perf_counter()
        rows = self._db.execute(sql, [_python(v) for v in equal.values()]).fetchall()
        self.timings[table].append(time.perf_counter() - start)
        return rows

    def lookup_in(self, table: str, columns, column: str, values) -> list[tuple]:
        """The ``columns`` of the rows whose ``column`` is each of ``values``, in that order.

        ``column`` should be unique (a one-column primary key, such as ``creative_id``); a
        value may repeat in ``values`` and its row is repeated. Raises ``ValueError`` naming the
        values that have no row. Timed into ``timings[table]``.
        """
        select = self._check_columns(table, columns)
        (column,) = self._check_columns(table, [column])
        values = [_python(v) for v in values]
        distinct = list(dict.fromkeys(values))
        sql = (f"SELECT {_quote(column)}, {', '.join(_quote(c) for c in select)} "
               f"FROM {_quote(table)} WHERE {_quote(column)} IN ")
        start = time.perf_counter()
        found = {}
        for i in range(0, len(distinct), _CHUNK):
            chunk = distinct[i:i + _CHUNK]
            query = sql + f"({', '.join('?' * len(chunk))})"
            found.update((row[0], row[1:]) for row in self._db.execute(query, chunk))
        self.timings[table].append(time.perf_counter() - start)
        unknown = [v for v in distinct if v not in found]
        if unknown:
            raise ValueError(f"unknown {column} in {table!r}: {unknown}")
        return [found[v] for v in values]

    # ------------------------------------------------------------------ bookkeeping
    def count(self, table: str) -> int:
        """The number of rows of ``table``."""
        self._columns(table)
        return int(self._db.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0])

    def size_bytes(self) -> int:
        """The size of the database in bytes (pages x page size: the file's size once written)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * self._db.execute("PRAGMA page_size").fetchone()[0])


def _quote(name: str) -> str:
    """An identifier quoted for SQL (double quotes doubled inside)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a table or column name must be a non-empty str, got {name!r}")
    return '"' + name.replace('"', '""') + '"'
