"""Backups of the app's database while it serves, and restoring one into an empty database.

SQLite: the online backup API copies the file page by page inside one read transaction, so the
copy is the database as of one moment even while other processes write (in WAL mode writers do
not wait for it); the copy is then switched to a rollback journal (one self-contained file) and
checked with `PRAGMA integrity_check`. Restoring runs the same API the other way.

PostgreSQL: `pg_dump --format=custom` under a snapshot this module exports, so that the summary
printed with the backup is read from exactly the data the dump holds; restoring is one
`pg_restore --single-transaction`: a dump that fails half-way leaves the database as it was.

A backup is written under a temporary name and renamed once complete and checked: a file with
the final name is always a whole backup. Restoring is refused unless every table of the app in
the target is empty: restoring over live data is how backups destroy data.

Product photos are files in PHOTO_DIR, not rows; `archive_photos` packs them beside a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from app.models.base import Base
from app.services.money import format_yuan

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
EXTENSIONS = {"sqlite": "sqlite3", "postgresql": "dump"}
PHOTOS_SUFFIX = ".photos.tar.gz"
#: Counted in the summary printed after a backup and after a restore, to compare the two.
SUMMARY_TABLES = (
    "organizations",
    "users",
    "products",
    "product_photos",
    "orders",
    "bulk_orders",
    "invoices",
    "pledges",
    "ledger_entries",
)


class BackupError(Exception):
    """A backup or restore refused or failed; `message` says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Summary:
    """What an operator compares between a backup and its restore."""

    revision: str | None
    counts: dict[str, int]
    #: Sum of the ledger entries, and of its monthly roll-up (what pledge figures are read from).
    ledger_total_fen: int
    rollup_total_fen: int

    def lines(self) -> list[str]:
        def money(fen: int) -> str:
            return f"{fen} fen ({format_yuan(fen)})"

        lines = [f"  {'schema revision':<18}{self.revision or '(none)'}"]
        lines += [f"  {name:<18}{count:,}" for name, count in self.counts.items()]
        lines.append(f"  {'ledger total':<18}{money(self.ledger_total_fen)}")
        lines.append(f"  {'ledger roll-up':<18}{money(self.rollup_total_fen)}")
        return lines


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    summary: Summary
    photos: Path | None = None
    photo_files: int = 0


@dataclass(frozen=True)
class RestoreResult:
    summary: Summary
    #: The schema revisions the code expects; differs from summary.revision for an older backup.
    heads: frozenset[str] = field(default_factory=frozenset)
    photo_files: int | None = None

    @property
    def schema_current(self) -> bool:
        return frozenset({self.summary.revision}) == self.heads


# --- where backups go -------------------------------------------------------------------------


def default_name(engine: sa.Engine, now: datetime) -> str:
    return f"shanhai-{now:%Y%m%dT%H%M%SZ}.{EXTENSIONS.get(engine.dialect.name, 'backup')}"


def output_path(
    requested: Path | None, backups_dir: Path, engine: sa.Engine, now: datetime
) -> Path:
    """The file to write: `requested` (a file, or a directory to put the default name in), or
    the default name under `backups_dir`, created when missing (only the default one: a
    mistyped --output directory must not silently become a new directory)."""
    if requested is None:
        backups_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = backups_dir / default_name(engine, now)
    elif requested.is_dir():
        path = requested / default_name(engine, now)
    else:
        path = requested
        if not path.parent.is_dir():
            raise BackupError(f"The directory {path.parent} does not exist; create it first.")
    if path.exists():
        raise BackupError(f"{path} already exists; a backup never overwrites a file.")
    return path


def photos_path(backup_path: Path) -> Path:
    """shanhai-20261127T020000Z.sqlite3 -> shanhai-20261127T020000Z.photos.tar.gz"""
    return backup_path.with_name(backup_path.with_suffix("").name + PHOTOS_SUFFIX)


@contextlib.contextmanager
def _written_atomically(final: Path) -> Iterator[Path]:
    """A temporary file beside `final` (only the owner may read it: a backup holds password
    hashes and personal data), renamed to `final` once the block completes, removed if not."""
    partial = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        yield partial
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        if final.exists():
            raise BackupError(f"{final} appeared while the backup was written; it was kept.")
        os.replace(partial, final)
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        partial.unlink(missing_ok=True)


# --- the summary ------------------------------------------------------------------------------


def read_summary(connection: sa.Connection) -> Summary:
    tables = set(sa.inspect(connection).get_table_names())
    revision = None
    if "alembic_version" in tables:
        revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))

    def total(table: str) -> int:
        if table not in tables:
            return 0
        return int(connection.scalar(sa.text(f"SELECT coalesce(sum(amount_fen), 0) FROM {table}")))

    counts = {
        name: connection.scalar(sa.text(f"SELECT count(*) FROM {name}")) if name in tables else 0
        for name in SUMMARY_TABLES
    }
    return Summary(revision, counts, total("ledger_entries"), total("ledger_months"))


def _summary_of(url: sa.URL | str) -> Summary:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return read_summary(connection)
    finally:
        engine.dispose()


def tables_with_rows(connection: sa.Connection) -> list[str]:
    """The app's tables in this database that hold any row (alembic_version is not data)."""
    present = set(sa.inspect(connection).get_table_names())
    return [
        name
        for name in sorted(Base.metadata.tables)
        if name in present and connection.scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM {name})"))
    ]


def known_revisions(migrations_dir: str | Path) -> tuple[frozenset[str], frozenset[str]]:
    """(every revision of the code's migrations, the head ones)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir))
    script = ScriptDirectory.from_config(config)
    every = frozenset(revision.revision for revision in script.walk_revisions())
    return every, frozenset(script.get_heads())


def _check_revision(revision: str | None, migrations_dir: str | Path) -> None:
    every, heads = known_revisions(migrations_dir)
    if revision is None:
        raise BackupError(
            "The backup has no schema revision (no alembic_version): it is not a backup of "
            "this app's database."
        )
    if revision not in every:
        raise BackupError(
            f"The backup's schema revision {revision} is unknown to this version of the app "
            f"(its latest is {', '.join(sorted(heads))}): it was made by a newer version. "
            "Restore it with that version."
        )


def kind_of(path: Path) -> str:
    """'sqlite' or 'postgresql' from the file's first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"Cannot read {path}: {error.strerror}.") from error
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{path} is not a backup: it is neither a SQLite database nor a pg_dump archive."
    )


# --- backup -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _database_answers(engine: sa.Engine) -> Iterator[None]:
    try:
        yield
    except sa.exc.OperationalError as error:
        url = engine.url.render_as_string(hide_password=True)
        raise BackupError(f"The database {url} cannot be used: {error.orig}") from error


def backup(engine: sa.Engine, output: Path) -> BackupResult:
    """Copy the database `engine` points at into `output` (which must not exist)."""
    dialect = engine.dialect.name
    with _database_answers(engine), _written_atomically(output) as partial:
        if dialect == "sqlite":
            summary = _backup_sqlite(_sqlite_path(engine), partial)
        elif dialect == "postgresql":
            summary = _backup_postgres(engine, partial)
        else:
            raise BackupError(
                f"Backups are made of SQLite and PostgreSQL databases, not {dialect}."
            )
    return BackupResult(output, output.stat().st_size, summary)


def restore(
    engine: sa.Engine, source: Path, migrations_dir: str | Path, photos: tuple[Path, Path] | None
) -> RestoreResult:
    """Restore `source` into the (empty) database `engine` points at; with `photos`
    (archive, PHOTO_DIR), also unpack the photos into the (empty) photo directory."""
    dialect = engine.dialect.name
    kind = kind_of(source)
    if kind != dialect:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"{source} is a {names[kind]} backup, but the app's database is "
            f"{names.get(dialect, dialect)}: restore it into a {names[kind]} database."
        )
    if photos is not None:
        _check_photo_archive(*photos)
    with _database_answers(engine):
        if dialect == "sqlite":
            _restore_sqlite(engine, source, migrations_dir)
        else:
            _restore_postgres(engine, source, migrations_dir)
        engine.dispose()  # pooled connections knew the database before the restore
        summary = _summary_of(engine.url)
    photo_files = extract_photos(*photos) if photos is not None else None
    _, heads = known_revisions(migrations_dir)
    return RestoreResult(summary, heads, photo_files)


def _refuse_data(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        full = tables_with_rows(connection)
    if not full:
        return
    shown = ", ".join(full[:5]) + (f" and {len(full) - 5} more" if len(full) > 5 else "")
    if engine.dialect.name == "sqlite":
        how = (
            f"stop the app, move {_sqlite_path(engine)} aside (with its -wal and -shm files), "
            "or point DATABASE_URL at a new file"
        )
    else:
        name = engine.url.database
        how = (
            f"stop the app, then restore into a new database (createdb) named in DATABASE_URL, "
            f"or drop and re-create this one (dropdb {name} && createdb {name}) once you are "
            "sure its data is not needed"
        )
    raise BackupError(
        f"Refusing to restore: the database already holds data (in {shown}). "
        f"A restore goes into an empty database only; {how}."
    )


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_path(engine: sa.Engine) -> Path:
    database = engine.url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        raise BackupError("The database is in memory: there is no file to back up or restore.")
    return Path(database)


def _sqlite_connect(path: Path, mode: str) -> sqlite3.Connection:
    """mode "rw" or "ro": never creates the file (connect() would, for a mistyped path)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


def _backup_sqlite(source: Path, partial: Path) -> Summary:
    if not source.is_file():
        raise BackupError(f"The database file {source} does not exist.")
    src = _sqlite_connect(source, "rw")
    dst = sqlite3.connect(partial)
    try:
        # All pages in one step, so one read transaction: copying a few pages per step would
        # restart from the first page each time another connection writes, and under steady
        # writes might never finish. In WAL mode this read holds no writer back.
        src.backup(dst)
        # The copy inherits WAL mode from the live file; a rollback journal makes it one file
        # that opens as it is (read-only media, a mail attachment).
        dst.execute("PRAGMA journal_mode=DELETE")
        _integrity_check(dst, partial)
    except sqlite3.Error as error:
        raise BackupError(f"The backup of {source} failed: {error}.") from error
    finally:
        dst.close()
        src.close()
    return _summary_of(f"sqlite:///{partial}")


def _integrity_check(connection: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(problems[:5])}.")


def _check_sqlite_backup(path: Path) -> str | None:
    """The backup's schema revision, once the file is known whole and sound."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100:
        raise BackupError(f"{path} is not a valid backup: it is truncated (no whole header).")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is trustworthy when the two change counters agree.
    if header[24:28] == header[92:96] and path.stat().st_size < page_size * pages:
        raise BackupError(
            f"{path} is not a valid backup: it is truncated ({path.stat().st_size:,} of "
            f"{page_size * pages:,} bytes)."
        )
    try:
        connection = _sqlite_connect(path, "ro")
        try:
            _integrity_check(connection, path)
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables:
                return None
            return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise BackupError(f"{path} is not a valid backup: {error}.") from error


def _restore_sqlite(engine: sa.Engine, source: Path, migrations_dir: str | Path) -> None:
    target = _sqlite_path(engine)
    if not target.parent.is_dir():
        raise BackupError(f"The directory {target.parent} of the database does not exist.")
    _check_revision(_check_sqlite_backup(source), migrations_dir)
    _refuse_data(engine)
    engine.dispose()
    src = _sqlite_connect(source, "ro")
    dst = sqlite3.connect(target)
    try:
        dst.execute("PRAGMA busy_timeout=5000")
        # The target holds no data; out of WAL mode it takes a copy of any page size (a WAL
        # database cannot change its page size). The app switches it back on its next connect.
        dst.execute("PRAGMA journal_mode=DELETE")
        src.backup(dst)
        _integrity_check(dst, target)
    except sqlite3.Error as error:
        hint = " Is the app still using it? Stop it first." if "locked" in str(error) else ""
        raise BackupError(f"Restoring into {target} failed: {error}.{hint}") from error
    finally:
        dst.close()
        src.close()


# --- PostgreSQL -------------------------------------------------------------------------------


def libpq_arguments(url: sa.URL) -> tuple[str, dict[str, str]]:
    """(a libpq URI without the password, the environment that carries it): what pg_dump and
    pg_restore are given, so that the password never shows in the process list."""
    uri = sa.URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return uri, env


def pg_tool(name: str, server_major: int) -> str:
    """The path of pg_dump or pg_restore on PATH, refused when older than the server."""
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found on PATH. Install the PostgreSQL client tools of version "
            f"{server_major} or later (Debian: apt-get install postgresql-client-{server_major})."
        )
    try:
        answer = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        raise BackupError(f"{path} cannot be run: {error.strerror}.") from error
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", answer.stdout)
    if answer.returncode != 0 or found is None:
        raise BackupError(f"{path} --version did not say its version: {answer.stdout.strip()!r}.")
    major = int(found.group(1))
    if major < server_major:
        raise BackupError(
            f"{path} is version {major}, older than the server's {server_major}; it cannot "
            f"read this server. Install postgresql-client-{server_major} (or later) and put "
            "its bin directory first on PATH."
        )
    return path


def _server_major(connection: sa.Connection) -> int:
    return int(connection.scalar(sa.text("SHOW server_version_num"))) // 10000


def _run(argv: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BackupError(f"{argv[0]} cannot be run: {error.strerror}.") from error
    if done.returncode != 0:
        detail = "\n".join(done.stderr.strip().splitlines()[-10:]) or f"exit {done.returncode}"
        raise BackupError(f"{what}:\n{detail}")
    return done


def _backup_postgres(engine: sa.Engine, partial: Path) -> Summary:
    uri, env = libpq_arguments(engine.url)
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            server_major = _server_major(connection)
            pg_dump = pg_tool("pg_dump", server_major)
            pg_restore = pg_tool("pg_restore", server_major)
            # The summary and the dump read the same snapshot: the figures printed are those
            # of the file, however much the app writes meanwhile. The transaction stays open
            # until pg_dump is done, which keeps the snapshot importable.
            snapshot = connection.scalar(sa.text("SELECT pg_export_snapshot()"))
            summary = read_summary(connection)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    f"--dbname={uri}",
                ],
                env,
                "pg_dump failed",
            )
    # The archive's table of contents reads back: the file is a whole pg_dump archive.
    _run([pg_restore, "--list", str(partial)], env, f"{partial} does not read back")
    return summary


def _dump_revision(pg_restore: str, source: Path, env: dict[str, str]) -> str | None:
    """alembic_version's row in a custom-format dump, read without restoring anything."""
    done = _run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(source)],
        env,
        f"{source} is not a valid backup",
    )
    lines = iter(done.stdout.splitlines())
    for line in lines:
        if line.startswith("COPY ") and "alembic_version" in line:
            row = next(lines, "\\.")
            return None if row == "\\." else row.split("\t")[0]
    return None


def _restore_postgres(engine: sa.Engine, source: Path, migrations_dir: str | Path) -> None:
    uri, env = libpq_arguments(engine.url)
    with engine.connect() as connection:
        pg_restore = pg_tool("pg_restore", _server_major(connection))
    _run([pg_restore, "--list", str(source)], env, f"{source} is not a valid backup")
    _check_revision(_dump_revision(pg_restore, source, env), migrations_dir)
    _refuse_data(engine)
    engine.dispose()
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            # Tables made by `flask db upgrade` (empty: checked above) are dropped and made
            # again from the dump; in a new database there is nothing to drop.
            "--clean",
            "--if-exists",
            f"--dbname={uri}",
            str(source),
        ],
        env,
        f"Restoring {source} failed, so nothing was restored (pg_restore runs as one transaction)",
    )


# --- photos -----------------------------------------------------------------------------------


def _photo_files(photo_dir: Path) -> list[Path]:
    """The stored photos; the photo service's temporary files (".upload-...") are not."""
    if not photo_dir.is_dir():
        return []
    return sorted(
        path
        for path in photo_dir.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.parts[-2:])
    )


def archive_photos(photo_dir: Path, output: Path) -> int:
    """Pack PHOTO_DIR into a tar.gz at `output`; the number of files packed.

    Run after the database backup: photo files are written before the rows naming them are
    committed, so every photo that backup names is on disk by now, unless deleted meanwhile.
    """
    if output.exists():
        raise BackupError(f"{output} already exists; a backup never overwrites a file.")
    packed = 0
    with _written_atomically(output) as partial, tarfile.open(partial, "w:gz") as archive:
        for path in _photo_files(photo_dir):
            try:
                archive.add(path, arcname=str(path.relative_to(photo_dir)), recursive=False)
            except FileNotFoundError:
                continue  # deleted since it was listed: its row is gone too
            packed += 1
    return packed


def _check_photo_archive(archive: Path, photo_dir: Path) -> None:
    if _photo_files(photo_dir):
        raise BackupError(
            f"Refusing to unpack photos: {photo_dir} (PHOTO_DIR) already holds photos. "
            "Point PHOTO_DIR at an empty directory, or restore without --photos."
        )
    try:
        with tarfile.open(archive, "r:gz") as opened:
            for member in opened:
                tarfile.data_filter(member, str(photo_dir))
    except (OSError, tarfile.TarError, EOFError) as error:
        raise BackupError(f"{archive} is not a valid photo archive: {error}.") from error


def extract_photos(archive: Path, photo_dir: Path) -> int:
    photo_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as opened:
        members = [member for member in opened if member.isfile()]
        # The "data" filter refuses absolute paths, "..", links and devices.
        opened.extractall(photo_dir, members=members, filter="data")
    return len(members)
