"""Backups of a county: the database and the files it points to, in one archive made while the
server runs, and a restore from such an archive (`qifu backup`, `qifu restore`; every night by
`qifu worker` when ``QIFU_BACKUP_DIR`` is set).

An archive (``qifu-YYYYMMDD-HHMMSS.tar.gz``) holds ``manifest.json`` (format, when, which
database, its applied migrations, the rows of the main tables, the database file's SHA-256),
the database (``database.sqlite3``, a consistent copy made with SQLite's online backup, or
``database.pgdump``, ``pg_dump``'s custom format taken in the same snapshot as the counts) and
``attachments/`` (the enterprises' uploads, stored under their SHA-256, which restore checks).
The rest of the data directory is made again when needed (analytical copies, caches, learnt
models) or is transient (background exports, the sender's journal, the file SMS backend).

It is written as ``….part`` and renamed when complete, so an archive with its final name is
whole. A restore checks everything before it touches the database, keeps a copy of the
database it replaces beside it (``before-restore-…``), replaces it (SQLite: in one step, by
SQLite's backup into the live file; PostgreSQL: the schema emptied, then the dump restored in
one transaction and its rows counted against the manifest, the kept copy put back if either
fails), and then migrates the restored database to this version's schema.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from qifu import __version__, config, in_use

FORMAT = "qifu-backup/1"
PATTERN = "qifu-*.tar.gz"
# the rows counted into the manifest and checked after a restore: what a bureau would miss first
TABLES = ("registry_entity", "reports_annualreport", "service_requests_servicerequest", "policies_match",
          "policies_payment", "reminders_outboxmessage", "auth_user")
FILES = "attachments"


class BackupError(Exception):
    pass


@dataclass
class Made:
    path: Path
    size: int
    rows: dict[str, int]
    files: int


# --- making one -------------------------------------------------------------------------------


def make(out: Path, now: dt.datetime | None = None) -> Made:
    """An archive of this database and its attachments: ``out`` itself when it names a
    ``.tar.gz`` file, else a file named by the time in the folder ``out``."""
    if connection.in_atomic_block:
        # PostgreSQL's snapshot begins a transaction of its own, and pg_dump would not see this
        # one's writes; SQLite's backup from a connection inside a transaction can wait for ever
        raise BackupError("不能在未提交的事务中备份：请在命令行运行 qifu backup")
    now = timezone.localtime(now or timezone.now())
    path = out if out.name.endswith(".tar.gz") else out / f"qifu-{now:%Y%m%d-%H%M%S}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".qifu-backup-") as tmp:
        db_file, rows, migrations = (_pg_dump if connection.vendor == "postgresql" else _sqlite_copy)(Path(tmp))
        files = sorted(p for p in (config.data_dir() / FILES).glob("*/*") if p.is_file() and ".tmp" not in p.name)
        manifest = {"format": FORMAT, "created_at": now.isoformat(timespec="seconds"), "qifu": __version__,
                    "database": connection.vendor, "database_file": db_file.name, "sha256": _sha256(db_file),
                    "rows": rows, "files": len(files), "migrations": migrations}
        part = path.with_name(path.name + ".part")
        # readable by the service's user only: the archive holds personal data
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mtime = len(data), int(now.timestamp())
                tar.addfile(info, io.BytesIO(data))
                tar.add(db_file, arcname=db_file.name)
                for f in files:
                    tar.add(f, arcname=f"{FILES}/{f.parent.name}/{f.name}")
            os.replace(part, path)
        except BaseException:  # a full disk, a kill: no half-written archive left to be mistaken for one
            part.unlink(missing_ok=True)
            raise
    return Made(path, path.stat().st_size, rows, len(files))


def _sqlite_copy(folder: Path) -> tuple[Path, dict[str, int], list[str]]:
    """A consistent copy of the live SQLite file (its online backup: other connections go on
    writing meanwhile), its row counts and applied migrations."""
    target = folder / "database.sqlite3"
    connection.ensure_connection()
    dest = sqlite3.connect(target)
    try:
        connection.connection.backup(dest)
        rows = _counts(dest)
        migrations = [f"{app}.{name}" for app, name in dest.execute("SELECT app, name FROM django_migrations")]
    finally:
        dest.close()
    return target, rows, sorted(migrations)


def _pg_dump(folder: Path) -> tuple[Path, dict[str, int], list[str]]:
    """``pg_dump`` of the database in the snapshot its row counts and applied migrations are
    read in."""
    target = folder / "database.pgdump"
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT pg_export_snapshot()")
        snapshot = cur.fetchone()[0]
        rows = _db_counts(cur)
        cur.execute("SELECT app, name FROM django_migrations")
        migrations = sorted(f"{app}.{name}" for app, name in cur.fetchall())
        _pg_tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                 f"--file={target}")
    return target, rows, migrations


# --- restoring one ----------------------------------------------------------------------------


@dataclass
class Restored:
    manifest: dict
    rows: dict[str, int]
    files: int
    kept: Path | None  # the replaced database's copy
    held: int = 0  # messages due before the restore, set to 状态未知 (``sender.hold_unconfirmed``)


def restore(archive: Path, force: bool = False, now: dt.datetime | None = None) -> Restored:
    """This database and attachments as in ``archive``. Everything is checked first (format,
    database kind, every file's SHA-256, SQLite's integrity, the row counts); a database that
    holds data is replaced only with ``force``, and kept beside it first. Messages the archive
    holds as due but unsent are set to 状态未知 for staff: they may have gone out since."""
    if not archive.is_file():
        raise BackupError(f"没有这个备份文件：{archive}")
    try:
        with in_use.alone():  # never under a running server or worker of this data directory
            return _restore(archive, force, now)
    except in_use.InUse as e:
        raise BackupError(str(e)) from None


def _restore(archive: Path, force: bool, now: dt.datetime | None) -> Restored:
    now = timezone.localtime(now or timezone.now())
    data = config.data_dir()
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data, prefix=".qifu-restore-") as tmp:
        staged = Path(tmp)
        manifest = _unpack(archive, staged)
        db_file = staged / manifest["database_file"]
        if manifest["database"] != connection.vendor:
            raise BackupError(f"这是 {_kind(manifest['database'])} 的备份，当前数据库是 {_kind(connection.vendor)}")
        _check_version(manifest)
        if connection.vendor == "sqlite":
            _check_sqlite(db_file, manifest)
        present = _present_rows()
        if present and not force:
            raise BackupError(f"当前数据库已有数据（{present}）。确认用备份覆盖请加 --force；覆盖前当前数据库会另存一份")
        kept = None
        if present:
            kept = data / f"before-restore-{now:%Y%m%d-%H%M%S}.tar.gz"
            make(kept, now)
        if connection.vendor == "postgresql":
            _pg_replace(db_file, kept, manifest)
        else:
            _sqlite_replace(db_file)
        files = _place_files(staged / FILES, data / FILES)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from qifu.reminders import sender

    # what the archive holds as still to send may have gone out after it was made
    held = sender.hold_unconfirmed(timezone.now())
    with connection.cursor() as cur:
        rows = _db_counts(cur)
    return Restored(manifest, rows, files, kept, held)


def _unpack(archive: Path, staged: Path) -> dict:
    """The archive's members into ``staged`` (names checked: nothing outside it), each file
    checked against its digest; the manifest."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                ok = (m.isfile() and (m.name in ("manifest.json", "database.sqlite3", "database.pgdump")
                                      or (len(parts) == 3 and parts[0] == FILES and len(parts[2]) == 64
                                          and parts[2].startswith(parts[1]))))
                if not ok:
                    raise BackupError(f"备份中有不认识的条目：{m.name}")
            tar.extractall(staged, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BackupError(f"备份文件已损坏或不完整：{archive.name}（{e}）") from None
    try:
        manifest = json.loads((staged / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError("备份缺少可读的 manifest.json") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"不是 qifu 备份，或格式 {manifest.get('format')} 不是 {FORMAT}")
    if manifest.get("database_file") not in ("database.sqlite3", "database.pgdump"):
        raise BackupError("备份的 manifest.json 没有写明数据库文件")
    db_file = staged / manifest["database_file"]
    if not db_file.is_file() or _sha256(db_file) != manifest.get("sha256"):
        raise BackupError("备份中的数据库文件与记录的校验值不符：文件已损坏")
    for f in (staged / FILES).glob("*/*"):
        if _sha256(f) != f.name:
            raise BackupError(f"备份中的附件 {f.name[:12]}… 与其校验值不符：文件已损坏")
    if manifest.get("files") != sum(1 for _ in (staged / FILES).glob("*/*")):
        raise BackupError("备份中的附件数与记录不符：文件不完整")
    return manifest


def _check_version(manifest: dict) -> None:
    """An archive of a newer qifu (a migration this version does not have) is refused: its
    schema would not be the one this code reads."""
    from django.db.migrations.loader import MigrationLoader

    known = {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}
    unknown = sorted(set(manifest.get("migrations", [])) - known)
    if unknown:
        raise BackupError(f"这份备份来自更新的 qifu（{manifest.get('qifu')}，有本版本没有的迁移 {unknown[0]} 等 "
                          f"{len(unknown)} 个）：请先把 qifu 升级到不低于该版本再恢复")


def _check_sqlite(db_file: Path, manifest: dict) -> None:
    db = sqlite3.connect(db_file)
    try:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("备份中的数据库未通过完整性检查")
        differs = _rows_differ(_counts(db), manifest)
        if differs:
            raise BackupError(f"备份中的数据库行数与记录不符（{differs}）")
    finally:
        db.close()


def _rows_differ(rows: dict[str, int], manifest: dict) -> str:
    """The tables whose row counts ``rows`` are not those the manifest recorded, in words (""
    when every one is)."""
    recorded = manifest.get("rows") or {}
    return "，".join(f"{t}：记录 {n} 行，实有 {rows.get(t, 0)} 行" for t, n in recorded.items()
                    if t in TABLES and rows.get(t, 0) != n)


def _present_rows() -> str:
    """What the current database holds, in words ("" when nothing worth keeping)."""
    with connection.cursor() as cur:
        rows = _db_counts(cur)
    return "，".join(f"{what} {rows[t]} 个" for t, what in (("registry_entity", "主体"), ("auth_user", "账号")) if rows[t])


def _sqlite_replace(db_file: Path) -> None:
    """The staged copy written into the live file by SQLite's backup, under its locks: one step
    for every other connection."""
    connection.ensure_connection()
    source = sqlite3.connect(db_file)
    try:
        source.backup(connection.connection)
    finally:
        source.close()
    connection.close()


def _pg_replace(dump: Path, kept: Path | None, manifest: dict) -> None:
    """The dump restored into an emptied schema, in one transaction of ``pg_restore``, and its
    rows counted against the manifest (a dump cannot be counted before it is loaded, as SQLite's
    copy is); the emptying is the one step outside that transaction, so on failure, or on counts
    that differ, the copy kept before is put back (or the schema emptied again, where the
    database held nothing worth keeping)."""
    try:
        _pg_load(dump)
        with connection.cursor() as cur:
            differs = _rows_differ(_db_counts(cur), manifest)
        if differs:
            raise BackupError(f"恢复出的数据库行数与备份记录不符（{differs}）：已放回恢复前的数据库")
    except BackupError:
        if kept is not None:
            with tempfile.TemporaryDirectory(dir=kept.parent) as tmp:
                _unpack(kept, Path(tmp))
                _pg_load(Path(tmp) / "database.pgdump")
        else:
            _pg_empty()
        raise


def _pg_load(dump: Path) -> None:
    """The schema emptied, then ``dump`` restored into it in one transaction (which stops at
    the first error)."""
    _pg_empty()
    _pg_tool("pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", str(dump))


def _pg_empty() -> None:
    connection.close()
    with connection.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    connection.close()


def _place_files(source: Path, target: Path) -> int:
    n = 0
    for f in source.glob("*/*"):
        dest = target / f.parent.name / f.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest.with_suffix(".tmp"))
            os.replace(dest.with_suffix(".tmp"), dest)
        n += 1
    return n


# --- every night ------------------------------------------------------------------------------


def nightly() -> Made | None:
    """`qifu worker`'s job: an archive in ``QIFU_BACKUP_DIR`` (nothing when it is not set),
    keeping the newest ``QIFU_BACKUP_KEEP`` (14)."""
    folder = config.get("QIFU_BACKUP_DIR")
    if not folder:
        return None
    made = make(Path(folder))
    keep = int(config.get("QIFU_BACKUP_KEEP", "14"))
    for old in sorted(Path(folder).glob(PATTERN))[:-keep]:
        old.unlink()
    return made


def missed(now: dt.datetime) -> bool:
    """Whether the worker, starting at ``now``, should make up a night's archive it missed while
    it was down: nightly archives are set up and none was made in the last 24 hours."""
    seen = status(now)
    return seen["configured"] and (seen["at"] is None or now - seen["at"] > dt.timedelta(hours=24))


def status(now: dt.datetime | None = None) -> dict:
    """For the administrator's dashboard: whether nightly archives are set up, the newest one,
    and whether it is overdue (none in the last 36 hours: the worker stopped, or the folder is
    full or not writable)."""
    folder = config.get("QIFU_BACKUP_DIR")
    if not folder:
        return {"configured": False}
    archives = sorted(Path(folder).glob(PATTERN))
    latest = archives[-1] if archives else None
    at = dt.datetime.fromtimestamp(latest.stat().st_mtime, tz=dt.UTC) if latest else None
    overdue = at is None or (now or timezone.now()) - at > dt.timedelta(hours=36)
    return {"configured": True, "folder": folder, "count": len(archives), "latest": latest.name if latest else "",
            "size_mb": round(latest.stat().st_size / 1e6, 1) if latest else 0, "at": at, "overdue": overdue}


# --- helpers ----------------------------------------------------------------------------------


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] if t in tables else 0 for t in TABLES}


def _db_counts(cur) -> dict[str, int]:
    """``_counts`` of this database, through Django's cursor ``cur`` (0 for a table not there)."""
    tables = set(connection.introspection.table_names(cur))

    def count(table: str) -> int:
        cur.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return cur.fetchone()[0]

    return {t: count(t) if t in tables else 0 for t in TABLES}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _kind(vendor: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(vendor, vendor)


def _pg_env() -> dict[str, str]:
    """The connection for PostgreSQL's client tools, in their environment variables (so that a
    password is not on a command line other users can read)."""
    s = connection.settings_dict
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD"),
                     ("PGDATABASE", "NAME")):
        if s.get(key):
            env[var] = str(s[key])
    return env


def _pg_tool(tool: str, *args: str) -> None:
    """``pg_dump`` or ``pg_restore`` (PostgreSQL's client tools, which must be installed) on
    this database."""
    if shutil.which(tool) is None:
        raise BackupError(f"找不到 {tool}：请安装 PostgreSQL 客户端（Debian: apt-get install postgresql-client）")
    env = _pg_env()
    cmd = [tool, *args, *([f"--dbname={env['PGDATABASE']}"] if tool == "pg_restore" else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"退出码 {done.returncode}"
        raise BackupError(f"{tool} 失败：{last}")
