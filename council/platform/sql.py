"""A deliberately small SQL adapter for read models, positions and tokens: the same statements
(with `?` placeholders) run on SQLite in the embedded deployment and PostgreSQL at scale."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from council.kernel.errors import InfrastructureUnavailable

Row = tuple[Any, ...]


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def redact(url: str) -> str:
    """The URL with any password removed, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _unreachable(url: str, exc: Exception) -> InfrastructureUnavailable:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InfrastructureUnavailable(f"PostgreSQL at {redact(url)} is unreachable: {reason}")


@contextmanager
def setup_lock(url: str | None, name: str) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock `name` for the block (nothing to hold on SQLite).

    PostgreSQL's CREATE ... IF NOT EXISTS is not safe against a twin running at the same moment:
    one of two processes creating the same schema, table or index fails with "tuple concurrently
    updated" or a duplicate key in the catalogue. A service's processes (council.platform.workers)
    start together, so they create their tables one process at a time under this lock."""
    if not url or url.startswith("sqlite:"):
        yield
        return
    import psycopg

    try:
        conn = psycopg.connect(url, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from None
    with conn:  # closing the session releases the lock, whatever happens in the block
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        yield


def table_exists(tx: Tx, dialect: str, table: str) -> bool:
    """Whether `table` is in the transaction's database (PostgreSQL: on its search path)."""
    if dialect == "sqlite":
        return bool(tx.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))
    return bool(tx.execute("SELECT to_regclass(?)", (table,))[0][0])


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @property
    def connection(self) -> Any:
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


def _check_connection(conn: Any) -> None:
    """Whether a pooled connection is still usable, without a round trip when it plainly is.

    A connection the server has closed (PostgreSQL restarted, a fail-over, an administrator's
    pg_terminate_backend) has something to read (the server's farewell, or end of file) while
    it sits idle in the pool; a healthy idle one has nothing. So only a connection with
    something waiting is asked (the pool's own check, a round trip, which fails and has it
    replaced); the others are handed out as they are. Asking every connection cost one round
    trip per request, as much as the request's own statement."""
    import select

    from psycopg_pool import ConnectionPool

    if conn.closed:
        raise OSError("connection closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


ROWS_PER_INSERT = 500  # rows per multi-row INSERT: well inside both databases' parameter limits


def insert_rows(tx: Tx, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """`rows` inserted by `head` ("INSERT INTO t (a, b) VALUES") and `tail` (an ON CONFLICT
    clause), a few hundred rows a statement: each statement is one round trip and one call
    into the driver, where an executemany makes one per row (some 35 us each in psycopg).
    Unlike one statement a row, a statement does not see its own rows: with `tail` ON
    CONFLICT ... DO UPDATE no two rows may have the same key (PostgreSQL refuses it)."""
    if not rows:
        return
    width = len(rows[0])
    for start in range(0, len(rows), ROWS_PER_INSERT):
        part = rows[start:start + ROWS_PER_INSERT]
        values = [value for row in part for value in row]
        if isinstance(tx, _PgTx | _PipelinedPgTx):
            # Numbered parameters through a raw cursor: psycopg would otherwise parse the
            # statement's thousands of placeholders again every time (some 20 ms each).
            import psycopg

            with psycopg.RawCursor(tx.connection) as cur:
                cur.execute(f"{head} {_numbered_groups(width, len(part))} {tail}", values)
        else:
            group = "(" + ", ".join("?" * width) + ")"
            tx.execute(f"{head} {', '.join([group] * len(part))} {tail}", values)


@lru_cache(maxsize=64)
def _numbered_groups(width: int, count: int) -> str:
    """"($1, $2), ($3, $4)" for `count` rows of `width` values."""
    return ", ".join("(" + ", ".join(f"${row * width + column + 1}" for column in range(width))
                     + ")" for row in range(count))


def is_write(sql: str) -> bool:
    """Whether a statement only writes (its answer is always empty)."""
    head = sql.lstrip()[:7].upper()
    return head.startswith(("INSERT", "UPDATE", "DELETE")) and "RETURNING" not in sql.upper()


class _PipelinedPgTx:
    """A PostgreSQL transaction in pipeline mode: a write is sent without waiting for its
    answer (an error in it surfaces at the next read or at COMMIT, and fails the
    transaction); a read first waits for everything before it. Statements run in the order
    given, so the effect is that of running them one by one, without a round trip each."""

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._writes: dict[str, bool] = {}

    @property
    def connection(self) -> Any:
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        write = self._writes.get(sql)
        if write is None:
            write = self._writes[sql] = is_write(sql)
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        if write:
            return []
        self._pipeline.sync()
        return list(cur.fetchall()) if cur.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class Database:
    """One database (an SQLite file, or a schema in PostgreSQL) with short transactions."""

    dialect: Literal["sqlite", "postgres"]

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._local = threading.local()
        self._pool: Any = None
        if url.startswith("sqlite:"):
            self.dialect = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite:"))
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.dialect = "postgres"
            self._open_pool()

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        return cls(f"sqlite:///{path}")

    def _open_pool(self) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        try:
            with psycopg.connect(self.url, connect_timeout=3, autocommit=True) as conn:
                if self.schema:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        except psycopg.Error as exc:
            raise _unreachable(self.url, exc) from None
        options = f"-c search_path={self.schema}" if self.schema else ""
        self._pool = ConnectionPool(
            self.url,
            # None kept idle: a service is several processes, each with a few databases it may
            # not use (council.platform.workers), and PostgreSQL has a connection limit.
            min_size=0,
            max_size=4,
            # Autocommit: `query` runs its one statement in one round trip, with no BEGIN
            # and COMMIT around it; `transaction` and `reading` still BEGIN explicitly.
            kwargs={"options": options, "connect_timeout": 3, "autocommit": True,
                    "application_name": f"council:{self.schema or 'public'}"[:63]},
            # A connection is checked as it is handed out: one the server closed (PostgreSQL
            # restarted, a fail-over) is dropped and replaced, instead of failing every request
            # that draws it until the pool happens to recycle it.
            check=_check_connection,
            # Waiting for a connection while the database is down ends in PoolTimeout (503 with
            # Retry-After, see council.platform.problems) after this long, not the default 30 s.
            timeout=5.0,
            open=True,
        )

    def _sqlite_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """All statements inside commit together, or none do."""
        if self.dialect == "sqlite":
            conn = self._sqlite_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        else:
            with self._pool.connection() as conn, conn.transaction():
                yield _PgTx(conn)

    @contextmanager
    def pipelined(self) -> Iterator[Tx]:
        """A transaction for many writes (a projection applying a batch of events): as
        `transaction()`, but on PostgreSQL its writes go without waiting for each answer
        (pipeline mode), so a batch's writes cost about one round trip, not one each. Reads
        in it see the writes before them. On SQLite, which has no round trips, the same as
        `transaction()`."""
        if self.dialect == "sqlite":
            with self.transaction() as tx:
                yield tx
        else:
            with self._pool.connection() as conn, conn.pipeline() as pipeline, \
                    conn.transaction():
                yield _PipelinedPgTx(conn, pipeline)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """A read-only transaction: one consistent view of the data. On SQLite it takes no
        write lock (WAL readers never wait for writers), so reads on a hot path, such as a
        request's agreement lookup or a relay's position, do not queue behind a projection's
        or a store's write transaction as `transaction()` would make them."""
        if self.dialect == "sqlite":
            conn = self._sqlite_conn()
            conn.execute("BEGIN")
            try:
                yield _SqliteTx(conn)
            finally:
                conn.execute("COMMIT")
        else:
            with self._pool.connection() as conn, conn.transaction():
                yield _PgTx(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One read-only statement on its own, in one round trip (no BEGIN and COMMIT): for
        the hot path of every request (a token's revocation generation, the read position),
        where a transaction's extra round trips cost more than the statement. The statement
        sees one consistent snapshot, as any statement does."""
        if self.dialect == "sqlite":
            return self._sqlite_conn().execute(sql, tuple(params)).fetchall()
        with self._pool.connection() as conn:
            cur = conn.execute(sql.replace("?", "%s"), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.execute("SELECT 1")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_database(settings: Any, name: str) -> Database:
    """The database named `name` for these settings: var/<name>.sqlite or schema <prefix>_<name>."""
    if settings.uses_postgres:
        return Database(settings.database_url, schema=settings.schema_of(name))
    return Database.sqlite(settings.sqlite_path(name))
