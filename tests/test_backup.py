"""`flask backup` and `flask restore`, on the kind of database the suite runs on.

On SQLite each database is a new file; on PostgreSQL (TEST_DATABASE_URL) each is a new database
named backup_test_<random> on the same server, dropped afterwards. Nothing here skips: on
PostgreSQL a missing or too old pg_dump fails the backups, and so the tests, in CI and out.

The source database is built the way an operator builds one: `flask db upgrade`, then
`flask seed-demo` with its year of history (orders, invoices, ledger entries, pledges), all
through the command line. Its pledge figures are read through app.services.pledges, as the
pledge pages read them, before the backup and again in the restored copy.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from app import create_app
from app.extensions import db
from app.models import Role, User, UserRole
from app.services import accounts, backup, demo_history, ledger, pledges
from app.services.clock import local_date, utcnow
from tests import helpers

TEST_URL = os.environ.get("TEST_DATABASE_URL") or ""
ON_POSTGRES = TEST_URL.startswith("postgresql")
KIND = "postgresql" if ON_POSTGRES else "sqlite"
EXTENSION = backup.EXTENSIONS[KIND]
PASSWORD = "demo-password-1"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
(HEAD,) = backup.known_revisions(MIGRATIONS)[1]


# --------------------------------------------------------------------------------------------
# Databases of our own


class Databases:
    """New, empty databases of the suite's kind; every one is removed at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.created: list[str] = []
        self.apps: list = []
        self._admin = (
            sa.create_engine(TEST_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
            if ON_POSTGRES
            else None
        )

    def new_url(self) -> str:
        name = f"backup_test_{secrets.token_hex(4)}"
        if self._admin is None:
            return f"sqlite:///{self.directory / name}.sqlite3"
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        self.created.append(name)
        return sa.make_url(TEST_URL).set(database=name).render_as_string(hide_password=False)

    def new_app(self, url: str | None = None):
        """The app (testing configuration) on `url`, or on a new empty database."""
        photo_dir = self.directory / f"photos-{secrets.token_hex(4)}"
        app = create_app(
            "testing", SQLALCHEMY_DATABASE_URI=url or self.new_url(), PHOTO_DIR=str(photo_dir)
        )
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            with app.app_context():
                db.engine.dispose()
        if self._admin is not None:
            # Each DROP DATABASE waits for a checkpoint; dropped together, they share one.
            with ThreadPoolExecutor(max_workers=max(1, len(self.created))) as pool:
                list(pool.map(self._drop, self.created))
            self._admin.dispose()

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> Iterator[Databases]:
    made = Databases(tmp_path_factory.mktemp("backup-dbs"))
    try:
        yield made
    finally:
        made.close()


def flask(app, *args: str):
    """Run `flask <args>` against `app`, as an operator would on its configuration."""
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def succeeded(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Error: " in result.output
    return result.output


def summary_lines(output: str) -> list[str]:
    """The summary block both commands print, for an operator to compare."""
    lines = output.splitlines()
    start = lines.index("Summary:") + 1
    return [line for line in lines[start:] if line.startswith("  ")]


def pledge_totals(app) -> dict[tuple[int, str], int]:
    """What the pledge pages show: the amount met of every pledge, today."""
    with app.app_context():
        today = local_date(utcnow())
        return {
            (pledge.id, pledge.name): pledges.progress(
                db.session, pledge, today, breakdowns=False
            ).met_fen
            for pledge in pledges.list_pledges(db.session)
        }


def tables_with_rows(app) -> list[str]:
    with app.app_context(), db.engine.connect() as connection:
        return backup.tables_with_rows(connection)


def table_names(app) -> set[str]:
    with app.app_context(), db.engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def backup_file(app, directory: Path, *args: str) -> tuple[Path, str]:
    directory.mkdir(exist_ok=True)
    output = succeeded(flask(app, "backup", "--output", str(directory), *args))
    found = re.search(r"^Backup written: (\S+) \(", output, re.M)
    assert found, output
    path = Path(found.group(1))
    assert path.parent == directory and path.suffix == f".{EXTENSION}"
    return path, output


@pytest.fixture(scope="module")
def empty_target(databases):
    """One new database for the tests whose restores must be refused: each checks that it is
    still empty afterwards (on PostgreSQL a database more costs a checkpoint when dropped)."""
    return databases.new_app()


@pytest.fixture(scope="module")
def cheap_hashes() -> Iterator[None]:
    # seed-demo makes two dozen accounts; real password hashes would be most of its time.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
        patch.setattr(demo_history, "generate_password_hash", helpers.cheap_password_hash)
        yield


@dataclass
class Source:
    app: object
    totals: dict[tuple[int, str], int]
    backup: Path
    backup_output: str


@pytest.fixture(scope="module")
def source(databases, cheap_hashes, tmp_path_factory) -> Source:
    """A database filled like the demo, and one backup of it."""
    app = databases.new_app()
    succeeded(flask(app, "db", "upgrade"))
    succeeded(flask(app, "seed-demo", "--password", PASSWORD))
    totals = pledge_totals(app)
    # The demo history counts toward every pledge: the comparison below is of real figures.
    assert len(totals) == 3 and all(met > 0 for met in totals.values()), totals
    path, output = backup_file(app, tmp_path_factory.mktemp("backups"))
    return Source(app, totals, path, output)


# --------------------------------------------------------------------------------------------
# Back up, restore, compare


@pytest.mark.parametrize("target", ["new database", "schema from flask db upgrade"])
def test_a_restore_into_an_empty_database_shows_the_same_pledge_totals(databases, source, target):
    app = databases.new_app()
    if target == "schema from flask db upgrade":
        succeeded(flask(app, "db", "upgrade"))
    else:
        assert not table_names(app)

    output = succeeded(flask(app, "restore", str(source.backup)))

    assert f"Restored {source.backup} into " in output
    assert f"The schema is at the code's revision ({HEAD})." in output
    # The figures printed after the restore are those printed by the backup...
    printed = summary_lines(output)
    assert printed == summary_lines(source.backup_output)
    ledger_line = next(line for line in printed if "ledger total" in line)
    assert re.search(r"ledger total\s+[1-9]\d* fen", ledger_line), printed
    # ...and what the pledge pages would show is the same, to the fen.
    assert pledge_totals(app) == source.totals
    with app.app_context():
        assert ledger.check_rollup(db.session) == []
        # The restored database takes new rows (PostgreSQL's sequences came along).
        accounts.create_user(
            db.session,
            email="after-restore@shanhai.demo",
            name="恢复后",
            password="after-restore-1",
            roles=[Role.STAFF],
            organization=None,
            now=utcnow(),
        )
        db.session.commit()


def test_a_restore_into_a_database_holding_data_is_refused_and_changes_nothing(databases, source):
    app = databases.new_app()
    succeeded(flask(app, "db", "upgrade"))
    succeeded(
        flask(
            app,
            "create-user",
            "root@shanhai.demo",
            "--name",
            "管理员",
            "--role",
            "admin",
            "--password",
            "root-password-1",
        )
    )

    output = refused(flask(app, "restore", str(source.backup)))

    assert "Refusing to restore: the database already holds data (in user_roles, users)" in output
    assert "A restore goes into an empty database only" in output
    if ON_POSTGRES:
        assert "createdb" in output and "dropdb" in output
    else:
        assert "move" in output and "aside" in output
    assert tables_with_rows(app) == ["user_roles", "users"]
    with app.app_context():
        assert db.session.scalars(sa.select(User.email)).all() == ["root@shanhai.demo"]
    assert pledge_totals(app) == {}


def _truncated(fraction: float):
    def damage(good: bytes) -> bytes:
        return good[: int(len(good) * fraction)]

    return damage


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda good: b"", "is not a backup: it is neither a SQLite database nor a pg_dump"),
        (lambda good: os.urandom(len(good)), "is not a backup"),
        (_truncated(0.5), "is not a valid backup"),
        # On PostgreSQL this one passes the archive's checks and fails in pg_restore itself.
        (_truncated(0.97), "nothing was restored" if ON_POSTGRES else "is not a valid backup"),
    ],
    ids=["empty file", "random bytes", "cut in half", "last pages missing"],
)
def test_a_damaged_backup_is_refused_and_the_database_stays_empty(
    empty_target, source, tmp_path, damage, message
):
    bad = tmp_path / f"damaged.{EXTENSION}"
    bad.write_bytes(damage(source.backup.read_bytes()))

    output = refused(flask(empty_target, "restore", str(bad)))

    assert message in output
    assert not table_names(empty_target) - {"alembic_version"}


def test_a_backup_damaged_in_the_middle_is_refused(empty_target, source, tmp_path):
    data = bytearray(source.backup.read_bytes())
    if ON_POSTGRES:
        # Where the damage lands decides which check finds it: the archive's own check, or
        # pg_restore half-way through its one transaction. Either way nothing is restored.
        data[len(data) // 2 :] = os.urandom(len(data) - len(data) // 2)
        messages = ("is not a valid backup", "nothing was restored")
    else:
        # A page in the middle scribbled over: whole file, sound header, rotten content.
        page = int.from_bytes(data[16:18], "big")
        middle = (len(data) // page // 2) * page
        data[middle : middle + page] = b"\xff" * page
        messages = ("is not a valid backup",)
    bad = tmp_path / f"garbled.{EXTENSION}"
    bad.write_bytes(bytes(data))

    output = refused(flask(empty_target, "restore", str(bad)))

    assert any(message in output for message in messages), output
    assert not table_names(empty_target) - {"alembic_version"}


def test_a_backup_of_the_other_kind_of_database_is_refused(empty_target, tmp_path):
    app = empty_target
    if ON_POSTGRES:
        other = tmp_path / "shanhai.sqlite3"
        connection = sqlite3.connect(other)
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.commit()
        connection.close()
        expected = "is a SQLite backup, but the app's database is PostgreSQL"
    else:
        other = tmp_path / "shanhai.dump"
        other.write_bytes(b"PGDMP\x01\x0e\x00" + os.urandom(2000))
        expected = "is a PostgreSQL backup, but the app's database is SQLite"

    output = refused(flask(app, "restore", str(other)))

    assert expected in output
    assert not table_names(app) - {"alembic_version"}


def test_an_older_backup_is_restored_and_the_operator_told_to_upgrade(databases, tmp_path):
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    previous = ScriptDirectory.from_config(config).get_revision(HEAD).down_revision
    old = databases.new_app()
    succeeded(flask(old, "db", "upgrade", previous))
    path, _ = backup_file(old, tmp_path / "backups")
    app = databases.new_app()

    output = succeeded(flask(app, "restore", str(path)))

    assert (
        f"The schema is at revision {previous}; this code expects {HEAD}: "
        "run `flask db upgrade` before serving." in output
    )
    succeeded(flask(app, "db", "upgrade"))
    with app.app_context(), db.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == HEAD


def test_a_backup_from_a_newer_version_of_the_app_is_refused(databases, empty_target, tmp_path):
    newer = databases.new_app()
    succeeded(flask(newer, "db", "upgrade"))
    with newer.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0042_future'"))
    path, _ = backup_file(newer, tmp_path / "backups")

    output = refused(flask(empty_target, "restore", str(path)))

    assert "schema revision 0042_future is unknown to this version of the app" in output
    assert not table_names(empty_target)


# --------------------------------------------------------------------------------------------
# Where backups go


def test_a_backup_goes_to_instance_backups_under_a_utc_timestamp(source, tmp_path):
    original = source.app.instance_path
    source.app.instance_path = str(tmp_path / "instance")
    try:
        output = succeeded(flask(source.app, "backup"))
    finally:
        source.app.instance_path = original

    backups = tmp_path / "instance" / "backups"
    files = list(backups.iterdir())
    assert len(files) == 1, files  # no temporary file left behind
    assert re.fullmatch(rf"shanhai-\d{{8}}T\d{{6}}Z\.{EXTENSION}", files[0].name)
    assert f"Backup written: {files[0]} (" in output
    # It holds password hashes and personal data: the owner alone may read it.
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert summary_lines(output) == summary_lines(source.backup_output)


def test_a_backup_is_refused_when_the_output_directory_is_missing(source, tmp_path):
    missing = tmp_path / "not-made" / f"shanhai.{EXTENSION}"

    output = refused(flask(source.app, "backup", "--output", str(missing)))

    assert f"The directory {missing.parent} does not exist; create it first." in output
    assert not missing.parent.exists()


def test_a_backup_never_overwrites_a_file(source, tmp_path):
    existing = tmp_path / f"kept.{EXTENSION}"
    existing.write_text("an earlier file")

    output = refused(flask(source.app, "backup", "--output", str(existing)))

    assert "already exists; a backup never overwrites a file" in output
    assert existing.read_text() == "an earlier file"


def test_a_failed_backup_leaves_no_file(databases, empty_target, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    if ON_POSTGRES:
        app = empty_target
        # A pg_dump older than the server: found on PATH before the real one.
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        _fake_tool(bin_dir, "pg_dump", "pg_dump (PostgreSQL) 12.22")
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        expected = "is version 12, older than the server's"
    else:
        app = databases.new_app(f"sqlite:///{tmp_path / 'never-made.sqlite3'}")
        expected = "does not exist"

    output = refused(flask(app, "backup", "--output", str(out)))

    assert expected in output
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Photos


def test_photos_go_beside_the_backup_and_come_back_with_the_restore(databases, source, tmp_path):
    photo_dir = Path(source.app.config["PHOTO_DIR"])
    photos = {
        "3f/3f9c2d7a00112233445566778899aabb-large.jpg": b"\xff\xd8 large",
        "3f/3f9c2d7a00112233445566778899aabb-thumb.jpg": b"\xff\xd8 thumb",
        "a0/a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5-medium.jpg": b"\xff\xd8 medium",
    }
    for name, content in photos.items():
        (photo_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (photo_dir / name).write_bytes(content)
    # An upload being written at that moment is not a photo yet.
    (photo_dir / "3f" / ".upload-x1y2").write_bytes(b"half")

    path, output = backup_file(source.app, tmp_path / "backups", "--with-photos")

    archive = backup.photos_path(path)
    assert archive.name == path.with_suffix("").name + ".photos.tar.gz"
    assert f"Photos: {archive} (3 file(s), " in output
    with tarfile.open(archive) as opened:
        assert sorted(opened.getnames()) == sorted(photos)

    app = databases.new_app()
    output = succeeded(flask(app, "restore", str(path), "--photos", str(archive)))

    assert "Photos: 3 file(s) unpacked into" in output
    restored = Path(app.config["PHOTO_DIR"])
    assert {
        str(p.relative_to(restored)): p.read_bytes() for p in restored.rglob("*") if p.is_file()
    } == photos
    assert pledge_totals(app) == source.totals


def test_photos_are_not_unpacked_over_other_photos(empty_target, source, tmp_path):
    archive = tmp_path / "x.photos.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    taken = Path(empty_target.config["PHOTO_DIR"]) / "aa" / "aa00-large.jpg"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"someone's photo")
    try:
        output = refused(
            flask(empty_target, "restore", str(source.backup), "--photos", str(archive))
        )

        assert "already holds photos" in output
        assert not table_names(empty_target)  # refused before the database was touched
        assert taken.read_bytes() == b"someone's photo"
    finally:
        shutil.rmtree(taken.parent)


# --------------------------------------------------------------------------------------------
# Writes while the backup runs


class Writer(threading.Thread):
    """Adds staff accounts one transaction at a time, each with its role row, until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.written = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                with Session(self.engine) as session:
                    n = self.written + 1
                    session.add(
                        User(
                            email=f"writer{n}@shanhai.demo",
                            name=f"写入者{n}",
                            password_hash="x",
                            created_at=utcnow(),
                            role_rows=[UserRole(role=Role.STAFF)],
                        )
                    )
                    session.commit()
                self.written = n
        except BaseException as error:
            self.error = error
        finally:
            self.engine.dispose()

    def wait_for(self, count: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while self.written < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.error is None, repr(self.error)
        assert self.written >= count, f"the writer managed {self.written} in {seconds} s"


def test_writes_during_the_backup_leave_a_whole_consistent_copy(databases, tmp_path):
    url = databases.new_url()
    app = databases.new_app(url)
    succeeded(flask(app, "db", "upgrade"))
    if not ON_POSTGRES:
        # 24 MB more to copy and check, so that the copy takes long enough for writes to land.
        with app.app_context(), db.engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE padding (b BLOB)")
            for _ in range(24):
                connection.exec_driver_sql("INSERT INTO padding VALUES (randomblob(1048576))")
    writer = Writer(url)
    writer.start()
    try:
        writer.wait_for(20)
        before = writer.written
        path, output = backup_file(app, tmp_path / "backups")
        during = writer.written - before
        writer.wait_for(writer.written + 20)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, repr(writer.error)
    # Otherwise this test would prove nothing.
    assert during > 0, "no write landed while the backup ran"

    if ON_POSTGRES:
        copy = databases.new_app()
        succeeded(flask(copy, "restore", str(path)))
        with copy.app_context(), db.engine.connect() as connection:
            users = connection.scalar(sa.text("SELECT count(*) FROM users"))
            roles = connection.scalar(sa.text("SELECT count(*) FROM user_roles"))
    else:
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            # One file: the copy is not in WAL mode, so it needs no -wal file beside it.
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            users = connection.execute("SELECT count(*) FROM users").fetchone()[0]
            roles = connection.execute("SELECT count(*) FROM user_roles").fetchone()[0]
        finally:
            connection.close()
    # The copy is the database of one moment: each account with its role, none half-written,
    # and the summary printed is that moment's.
    assert before <= users <= writer.written
    assert roles == users
    assert re.search(rf"^  users\s+{users:,}$", output, re.M), output


# --------------------------------------------------------------------------------------------
# pg_dump and pg_restore (no database needed)


def _fake_tool(directory: Path, name: str, version_line: str) -> Path:
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    tool.chmod(0o755)
    return tool


def test_a_missing_pg_dump_is_named_with_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(backup.BackupError) as refused_:
        backup.pg_tool("pg_dump", 15)

    assert "pg_dump was not found on PATH" in refused_.value.message
    assert "postgresql-client-15" in refused_.value.message


def test_a_pg_dump_older_than_the_server_is_refused(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "pg_dump", "pg_dump (PostgreSQL) 13.16 (Debian 13.16-0+deb11u1)")
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(backup.BackupError) as refused_:
        backup.pg_tool("pg_dump", 15)
    assert "is version 13, older than the server's 15" in refused_.value.message

    assert backup.pg_tool("pg_dump", 13) == str(tmp_path / "pg_dump")


def test_the_database_password_goes_to_pg_dump_in_its_environment_only():
    url = sa.make_url(
        "postgresql+psycopg://shop:p%40ss%2Fw0rd@db.example:5433/shanhai?sslmode=require"
    )

    uri, env = backup.libpq_arguments(url)

    assert uri == "postgresql://shop@db.example:5433/shanhai?sslmode=require"
    assert "p@ss" not in uri and "w0rd" not in uri
    assert env["PGPASSWORD"] == "p@ss/w0rd"


def test_a_restore_into_a_database_that_cannot_be_reached_says_so(databases, source, tmp_path):
    if ON_POSTGRES:
        name = f"backup_test_never_made_{secrets.token_hex(4)}"
        url = sa.make_url(TEST_URL).set(database=name).render_as_string(hide_password=False)
        expected = f"The database {sa.make_url(url).render_as_string()} cannot be used: "
    else:
        url = f"sqlite:///{tmp_path / 'no-such-directory' / 'shanhai.sqlite3'}"
        expected = f"The directory {tmp_path / 'no-such-directory'} of the database does not exist"
    app = databases.new_app(url)

    output = refused(flask(app, "restore", str(source.backup)))

    assert expected in output
