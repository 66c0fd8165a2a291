"""A synthetic county for a benchmark of staff pages and actions: made by `qifu synth`, its
registry and reports imported (and the year checked, if asked) into a data directory of its own,
then a script run on it in a process of its own (bench/abnormal_list.py,
bench/inspections_draw.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def qifu(env, *args) -> None:
    subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, check=True, capture_output=True)


def run_on_county(script: str, entities: int, prefix: str, database_url: str = "", check_year: int | None = None,
                  keep: bool = False) -> None:
    """``script`` (Python source) run on a county of ``entities``, on SQLite or on the
    PostgreSQL database ``database_url`` (dropped and made anew first); the working folder is
    removed afterwards unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if database_url:
        env["QIFU_DATABASE_URL"] = database_url
        base, _, name = database_url.rpartition("/")
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        qifu(env, "synth", "--entities", entities, "--seed", 4, "--out", work / "county")
        for kind in ("registry", "reports"):
            qifu(env, "import", kind, work / "county" / f"{kind}.csv")
        if check_year is not None:
            qifu(env, "check", "--year", check_year, "--out", work / "findings.csv")
        subprocess.run([sys.executable, "-c", script], env=env, check=True)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
