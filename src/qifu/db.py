"""Database readiness: every command migrates a fresh or older database before it runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from qifu import config


def ensure_ready() -> None:
    if connection.vendor == "sqlite":
        config.data_dir().mkdir(parents=True, exist_ok=True)
    if _every_migration_applied():
        return
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)


def _every_migration_applied() -> bool:
    """Whether every migration file of every app is recorded as applied: then nothing is left
    to migrate, and a command need not import some hundred migration modules to build Django's
    plan (a twentieth of a second, at every command). Anything else (a new file, a new
    database) goes through Django's own plan."""
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return False
    applied = set(recorder.applied_migrations())
    for app in apps.get_app_configs():
        module, _ = MigrationLoader.migrations_module(app.label)
        spec = importlib.util.find_spec(module) if module else None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in Path(folder).glob("*.py"):  # the modules Django's loader reads as migrations
                if path.stem[0] not in "_~" and (app.label, path.stem) not in applied:
                    return False
    return True


def analyze(table: str) -> None:
    """Refresh the planner's statistics after a bulk load. Without them SQLite picks the
    status index (most rows) over the address index for "same address and active"."""
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def release() -> None:
    """This thread's database connections closed. On SQLite each first copies its write-ahead
    log back into the database (PASSIVE: it waits for no reader), even while a server holds the
    database open: a bulk command or job lets the log grow to 256 MiB (``bulk_work``), and left
    behind, copying it would fall to the next writer, a web request perhaps; the copy also makes
    the writes safe from a power cut. The last connection's closing then removes the log."""
    from django.db import DatabaseError, connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None and not conn.in_atomic_block:
            try:
                with conn.cursor() as cur:
                    cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except DatabaseError:  # the caller's own error has been said; the log stays for the next
                pass
    connections.close_all()


def bulk_work() -> None:
    """For a command that writes a day's or a file's worth of rows in many transactions, on
    SQLite: a page cache of 256 MiB for this connection (the default 2 MiB spills index pages in
    the middle of a transaction), and the write-ahead log copied back into the database every
    256 MiB instead of every 4 MiB (each copy waits for the disk; with 4 MiB every commit of a
    big batch paid for one). The log is copied back before the connection closes (``release``:
    a command's end, a worker's job's end).
    PostgreSQL sizes its own buffers and checkpoints."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:
            cur.execute("PRAGMA cache_size = -262144")
            cur.execute("PRAGMA wal_autocheckpoint = 65536")
