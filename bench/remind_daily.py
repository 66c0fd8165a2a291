"""Benchmark: `qifu remind run` through the database, day after day.

    python bench/remind_daily.py --entities 30000 [--days 181] [--filings none|simulated] [--cli]

A county of N entities is synthesised and imported into a fresh SQLite data directory; then
`run_day` runs for every day of the next season (1 January – 30 June), in one process, with
the file SMS backend and a real SMTP server (aiosmtpd) on loopback. Per day: decide, store,
send, write. ``--cli``: each day as its own `qifu remind run` process instead (the whole
command, start-up included).

``--filings none``: the county holds no filings for that season, so every due entity stays
unfiled all season: the heaviest case for contacts, heavier than any real season.
``--filings simulated``: the season's filings as the county's behavioural model makes them
under qifu's policy (bench/remind_season.py's simulator), imported as reports before the
first day, each with its filing date; a day's run sees only those filed before it.

Targets (issue 4): one daily run on 240,000 entities <= 10 s; 181 days on 30,000 <= 10 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
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
    p.add_argument("--filings", choices=("none", "simulated"), default="none")
    p.add_argument("--cli", action="store_true", help="each day as its own `qifu remind run` process")
    p.add_argument("--only", nargs="*", default=[], help="run only these days (YYYY-MM-DD), after learning the plan")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-remind-"))
    smtp = _smtp_sink()
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SMS_BACKEND="file", QIFU_SMTP_HOST="127.0.0.1",
               QIFU_SMTP_PORT=str(smtp.port))
    env.pop("QIFU_DATABASE_URL", None)
    os.environ.update(env)
    try:
        subprocess.run([sys.executable, "-m", "qifu", "synth", "--entities", str(a.entities), "--seed", "1",
                        "--out", str(work / "county")], env=env, check=True, capture_output=True)
        for kind in KINDS:
            subprocess.run([sys.executable, "-m", "qifu", "import", kind, str(work / "county" / f"{kind}.csv")],
                           env=env, check=True, capture_output=True)
        if a.filings == "simulated":
            path = _season_filings(a.entities, work / "county")
            subprocess.run([sys.executable, "-m", "qifu", "import", "reports", str(path)], env=env, check=True,
                           capture_output=True)
        os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
        import django

        django.setup()
        from qifu.reminders.actions import run_day

        start = dt.date(2027, 1, 1)
        days = [start + dt.timedelta(days=i) for i in range(a.days)]
        if a.only:
            run_day(start)  # learns the season's plan
            days = [dt.date.fromisoformat(d) for d in a.only]
        rows = []
        t0 = time.perf_counter()
        for day in days:
            t = time.perf_counter()
            if a.cli:
                out = subprocess.run([sys.executable, "-m", "qifu", "remind", "run", "--date", str(day), "--out",
                                      str(work / "sent" / f"{day}.csv"), "--verbose"], env=env, check=True,
                                     capture_output=True, text=True)
                timing = dict(part.split()[:2] for part in out.stderr.strip().splitlines()[-1][3:].split("，"))
                number = lambda label, out=out: int(re.search(label + r" ?([0-9]+)", out.stdout).group(1))  # noqa: E731
                rows.append((day, time.perf_counter() - t, number("今日提醒"), number("短信和邮件已发送"),
                             number("电话和上门任务"), {k: float(v) for k, v in timing.items()}))
                continue
            r = run_day(day, out=work / "sent" / f"{day}.csv")
            rows.append((day, time.perf_counter() - t, r.decided, r.sent.get("sent", 0), r.tasks, r.timings))
        total = time.perf_counter() - t0
    finally:
        smtp.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(f"{a.entities:,} entities, filings {a.filings}, {len(rows)} days: {total:.0f} s in all; messages {sum(r[2] for r in rows):,}, "
          f"sent {sum(r[3] for r in rows):,}, tasks {sum(r[4] for r in rows):,}\n")
    print("| day | seconds | messages | sent | tasks | decide | store | send |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for day, secs, n, sent, tasks, tm in sorted(rows, key=lambda r: -r[1])[:8]:
        print(f"| {day} | {secs:.1f} | {n:,} | {sent:,} | {tasks:,} | {tm['decide']:.1f} | {tm['store']:.1f} | {tm['send']:.1f} |")


class _smtp_sink:
    """A real SMTP server (aiosmtpd, its own process) on a free loopback port that accepts and
    drops every message."""

    def __init__(self):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
                                         "-l", f"127.0.0.1:{self.port}"])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def _season_filings(entities: int, county: Path) -> Path:
    """The next season's reports as the behavioural model files them under qifu's policy:
    last year's report of each on-time filer, moved on a year, with its simulated filing time.
    An on-time filer with no report last year has nothing to copy and stays unfiled (more
    contacts than the model's season, not fewer)."""
    import numpy as np
    import polars as pl

    from qifu.engine.reminders.season import Season

    season = Season(entities, 1)
    outcome = season.run("qifu")
    filed = outcome.filed_day
    on_time = np.flatnonzero(season.due & (filed <= season.deadline))
    when = pl.DataFrame({"uscc": season.county.uscc[on_time], "day": filed[on_time].astype(np.int64)})
    last = season.filing_year - 2
    reports = pl.read_csv(county / "reports.csv", infer_schema=False).filter(pl.col("report_year") == str(last))
    rows = (reports.join(when, on="uscc")
            .with_columns(pl.lit(str(last + 1)).alias("report_year"),
                          (pl.lit(dt.datetime(last + 2, 1, 1, 10)) + pl.duration(days=pl.col("day")))
                          .dt.strftime("%Y-%m-%d %H:%M:%S").alias("filed_at"))
            .drop("day"))
    path = county / "season-filings.csv"
    rows.write_csv(path)
    print(f"{rows.height:,} simulated filings of {int(season.due.sum()):,} entities due ({outcome.on_time_rate:.1%} on time)")
    return path


if __name__ == "__main__":
    main()
