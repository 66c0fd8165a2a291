"""Benchmark: `qifu check` end to end on a county with 240,000 reports in the checked year.

    python bench/check_speed.py [--entities 370000]

A county of N entities (370,000 gives about 240,000 filed 2025 reports) is synthesised and
imported into a fresh SQLite data directory; then `qifu check --year 2025` runs as its own
process, twice (the second run updates the stored findings instead of inserting them).
Wall time and peak RSS per process; the check's own phases via --verbose.
Target (issue 3): <= 5 s end to end, engine <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("registry", "reports", "shareholders", "tax", "social", "reminders")


def run(args, env):
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "qifu", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args}: {out}\n{err}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out, err


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=370_000)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-check-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"))
    env.pop("QIFU_DATABASE_URL", None)
    rows = []
    try:
        run(["synth", "--entities", a.entities, "--seed", "1", "--out", work / "county"], env)
        for kind in KINDS:
            secs, mib, out, _ = run(["import", kind, work / "county" / f"{kind}.csv"], env)
            rows.append((f"import {kind} (includes refreshing its Parquet copy)", secs, mib))
        for attempt in ("first", "second"):
            secs, mib, out, err = run(["check", "--year", "2025", "--out", work / "findings.csv", "--verbose"], env)
            head = out.splitlines()[0]
            rows.append((f"qifu check, {attempt} run: {head}", secs, mib))
            rows.append((f"  phases: {err.strip().splitlines()[-1]}", float("nan"), float("nan")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| step | seconds | peak MiB |\n|---|---:|---:|")
    for label, s, m in rows:
        print(f"| {label} | {'' if s != s else f'{s:.1f}'} | {'' if m != m else f'{m:.0f}'} |")


if __name__ == "__main__":
    main()
