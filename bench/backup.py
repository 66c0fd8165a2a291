"""Backup and restore of a county (docs/deployment.md; results in docs/benchmarks.md).

A county made by `qifu synth` of ``--entities`` (240,000), its registry, reports, tax and social
security imported and checked (or the one a policy bench left in ``--workdir``), then, each as
a command: `qifu backup` into a folder, and `qifu restore --force` of that archive over the
database (which keeps the replaced database as an archive first). Sizes and peak memory too.

    .venv/bin/python bench/backup.py --workdir /tmp/pb
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def qifu(env, *args) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=240_000)
    p.add_argument("--workdir", type=Path)
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="qifu-backup-bench-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if not (work / "var" / "loaded").exists():
        if not (work / "county" / "README.md").exists():
            qifu(env, "synth", "--entities", args.entities, "--seed", 4, "--out", work / "county")
        for kind in ("registry", "reports", "tax", "social"):
            qifu(env, "import", kind, work / "county" / f"{kind}.csv")
        qifu(env, "check", "--year", 2025, "--out", work / "findings.csv")
        (work / "var" / "loaded").write_text("yes")
    db = work / "var" / "qifu.sqlite3"
    print(f"database {db.stat().st_size / 1e6:.0f} MB" if db.exists() else "database: QIFU_DATABASE_URL")
    folder = work / "backups"
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(2):
        done, seconds = qifu(env, "backup", "--out", folder)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"backup {i + 1}: {seconds:.1f} s, peak {peak:.0f} MB  {done.stdout.strip()}")
    archive = Path(re.search(r"已备份到 (\S+\.tar\.gz)", done.stdout).group(1))
    done, seconds = qifu(env, "restore", archive, "--force")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"restore over the database (keeping it first): {seconds:.1f} s, peak {peak:.0f} MB  {done.stdout.strip()}")
    for kept in (work / "var").glob("before-restore-*.tar.gz"):
        kept.unlink()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
