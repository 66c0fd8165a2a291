"""Benchmark: `qifu remind run` through the database, day after day.

    python bench/remind_daily.py --entities 30000 [--days 181]

A county of N entities is synthesised and imported into a fresh SQLite data directory; then
`run_day` runs for every day of the next season (1 January – 30 June), in one process, with
the file SMS backend. The synthetic county holds no filings for that season, so every due
entity stays unfiled: the heaviest case for contacts. Per day: decide, store, send, write.
Targets (issue 4): one daily run on 240,000 entities <= 10 s; 181 days on 30,000 <= 10 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("registry", "reports", "tax", "social", "reminders")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=30_000)
    p.add_argument("--days", type=int, default=181)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-remind-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SMS_BACKEND="file", QIFU_SMTP_PORT="9")
    env.pop("QIFU_DATABASE_URL", None)
    os.environ.update(env)
    try:
        subprocess.run([sys.executable, "-m", "qifu", "synth", "--entities", str(a.entities), "--seed", "1",
                        "--out", str(work / "county")], env=env, check=True, capture_output=True)
        for kind in KINDS:
            subprocess.run([sys.executable, "-m", "qifu", "import", kind, str(work / "county" / f"{kind}.csv")],
                           env=env, check=True, capture_output=True)
        os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
        import django

        django.setup()
        from qifu.reminders.actions import run_day

        start = dt.date(2027, 1, 1)
        rows = []
        t0 = time.perf_counter()
        for i in range(a.days):
            day = start + dt.timedelta(days=i)
            t = time.perf_counter()
            r = run_day(day, out=work / "sent" / f"{day}.csv")
            rows.append((day, time.perf_counter() - t, r.decided, r.sent.get("sent", 0), r.tasks, r.timings))
        total = time.perf_counter() - t0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(f"{a.entities:,} entities, {a.days} days: {total:.0f} s in all; messages {sum(r[2] for r in rows):,}, "
          f"sent {sum(r[3] for r in rows):,}, tasks {sum(r[4] for r in rows):,}\n")
    print("| day | seconds | messages | sent | tasks | decide | store | send |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for day, secs, n, sent, tasks, tm in sorted(rows, key=lambda r: -r[1])[:8]:
        print(f"| {day} | {secs:.1f} | {n:,} | {sent:,} | {tasks:,} | {tm['decide']:.1f} | {tm['store']:.1f} | {tm['send']:.1f} |")


if __name__ == "__main__":
    main()
