"""Database readiness: every command migrates a fresh or older database before it runs."""

from __future__ import annotations

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from qifu import config


def ensure_ready() -> None:
    if connection.vendor == "sqlite":
        config.data_dir().mkdir(parents=True, exist_ok=True)
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)


def analyze(table: str) -> None:
    """Refresh the planner's statistics after a bulk load. Without them SQLite picks the
    status index (most rows) over the address index for "same address and active"."""
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {connection.ops.quote_name(table)}")
