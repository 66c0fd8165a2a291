"""`qifu demo`'s filing season: the next season played to 20 June under qifu's own reminders and
correction notices, against the synthetic county's hidden behaviour.

Every decision is the product's: ``reminders.actions.run_day`` on each day something may go out
(the holdout's blanket days, the plans' first days, every day of the ladder), ``checks`` on the
reports filed, ``corrections.notify`` for what the check found. What the filers do is the
simulator's (``engine.reminders.season.Season``, rebuilt from the county's seed): who files on
its own and when, whether a text or call reaches them (receipts and call outcomes flow back the
way they do in a county: the history's statuses, staff closing their call tasks) and whether it
moves them to file. A filing is last year's report moved on a year, filed on its day; a firm
that corrects after a notice files its report again with the values it had before the synthetic
county injected an error. The dashboard then shows a season in progress: contacts against the
holdout and the blanket practice, and a correction rate.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from qifu.engine.reminders import policy
from qifu.engine.reminders.season import Season
from qifu.engine.synth.county import Progress

UNTIL = (6, 20)
CORRECTS = 0.6  # a firm told of an error it made corrects it by the demo's day
EXPLAINS = 0.5  # a firm told of a value that is right explains it


def play(folder: Path, entities: int, seed: int, progress: Progress | None = None) -> str | None:
    """Play the season after the county's last report year, once; a line to print, or None when
    there is nothing to play (played before, or not the county the seed makes)."""
    from qifu import analytics
    from qifu.reports.models import AnnualReport

    season = Season(entities, seed)
    fy = season.filing_year
    year = fy - 1
    # the registry file in the county's order (a few codes carry an injected error: same entity)
    usccs = pl.read_csv(folder / "registry.csv", columns=["uscc"], infer_schema=False)["uscc"].to_numpy()
    if len(usccs) != season.county.n or (usccs != season.county.uscc).mean() > 0.05:
        return None
    if AnnualReport.objects.filter(report_year=year).exists():
        return None
    last = _next_year(pl.read_csv(folder / "reports.csv", infer_schema=False), year, seed)
    holders = pl.read_csv(folder / "shareholders.csv", infer_schema=False).filter(
        pl.col("report_year") == str(year - 1)).with_columns(pl.lit(str(year)).alias("report_year"))
    index = {u: i for i, u in enumerate(usccs.tolist())}
    start, until = dt.date(fy, 1, 1), dt.date(fy, *UNTIL)
    days = _days(fy, until)
    filed = season.unprompted.copy()
    seen = policy.Seen.empty(season.county.n)
    imported = np.zeros(season.county.n, dtype=bool)
    contacts = reports = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, day in enumerate(days):
            if progress:
                progress("申报季", i + 1, len(days))
            reports += _file(last, holders, season, usccs, filed, imported, (day - start).days, Path(tmp))
            contacts += _run(day, season, usccs, index, filed, seen)
        reports += _file(last, holders, season, usccs, filed, imported, (until - start).days + 1, Path(tmp))
        analytics.refresh("reports")
        analytics.refresh("shareholders")
        notices, corrected, explained = _corrections(folder, last, year, until, Path(tmp))
    return (f"申报季演示（{fy} 年 1 月 1 日至 {until:%m 月 %d 日}，按 qifu 的提醒计划和更正通知，模拟主体的反应）："
            f"报送 {reports} 户，提醒 {contacts} 次；更正通知 {notices} 份，已更正 {corrected} 户，说明无误 {explained} 个问题")


def _days(fy: int, until: dt.date) -> list[dt.date]:
    """Every day a run may send something: the holdout's blanket days, each plan's first day,
    and every day from the earliest first day on (the ladder follows up on any day)."""
    from qifu.reminders import practice

    firsts = [dt.date(fy, m, d) for (m, d), _ in policy.FIRST.values()]
    days = {day for day, _ in practice.blanket().on(fy)} | set(firsts)
    day = min(firsts)
    while day <= until:
        days.add(day)
        day += dt.timedelta(days=1)
    return sorted(d for d in days if d <= until)


def _next_year(reports: pl.DataFrame, year: int, seed: int) -> pl.DataFrame:
    """Each entity's report of ``year - 1`` as its report of ``year``: the same firm a year on, its
    money figures grown or shrunk by one factor per firm (so the balance sheet still balances),
    not the same figures again (rule YY-03 rightly asks about a copied report)."""
    from qifu.engine.contract import REPORTS, T

    last = reports.filter(pl.col("report_year") == str(year - 1))
    growth = np.exp(np.random.default_rng([seed, year, 3]).normal(0.04, 0.12, size=last.height))
    money = [f.name for f in REPORTS.fields if f.type == T.MONEY and not f.name.startswith("si_") and f.name in last.columns]
    return last.with_columns(pl.lit(str(year)).alias("report_year"), pl.Series("_g", growth)).with_columns(
        (pl.col(m).cast(pl.Float64, strict=False) * pl.col("_g")).round(2).cast(pl.Utf8).alias(m) for m in money
    ).drop("_g")


def _file(last: pl.DataFrame, holders: pl.DataFrame, season: Season, usccs: np.ndarray, filed: np.ndarray,
          imported: np.ndarray, before: int, tmp: Path) -> int:
    """Import the reports (and their shareholders) of entities that have filed before day
    ``before`` and are not in yet; how many. An entity without last year's report to move on
    has nothing to file and stays unfiled."""
    from django.db import transaction

    from qifu.imports.actions import import_file

    new = np.flatnonzero(season.due & (filed < before) & ~imported)
    imported[new] = True
    if len(new) == 0:
        return 0
    when = pl.DataFrame({"uscc": usccs[new], "day": filed[new].astype(np.int64)})
    rows = (last.join(when, on="uscc")
            .with_columns((pl.lit(dt.datetime(season.filing_year, 1, 1, 10)) + pl.duration(days=pl.col("day"))
                           + pl.duration(minutes=pl.col("uscc").hash().mod(480)))
                          .dt.strftime("%Y-%m-%d %H:%M:%S").alias("filed_at"))
            .drop("day"))
    if rows.height:
        path = tmp / "filings.csv"
        rows.write_csv(path)
        owners = holders.filter(pl.col("uscc").is_in(rows["uscc"].implode()))
        owners.write_csv(tmp / "shareholders.csv")
        # in one transaction: the analytical copy is refreshed once, after the season, not per day
        with transaction.atomic():
            import_file("reports", path)
            if owners.height:
                import_file("shareholders", tmp / "shareholders.csv")
    return rows.height


def _run(day: dt.date, season: Season, usccs: np.ndarray, index: dict[str, int], filed: np.ndarray,
         seen: policy.Seen) -> int:
    """The day's `remind run`, then the filers' answer: receipts for the texts, outcomes for the
    calls and visits (closed as the township's staff would), filings some days later."""
    from qifu.reminders.actions import SHANGHAI, WRITTEN, close_tasks, run_day
    from qifu.reminders.models import ContactTask, OutboxMessage, ReminderRecord

    run_day(day)
    messages = list(OutboxMessage.objects.filter(planned_for=day, purpose="filing")
                    .values_list("entity_id", "also_for", "channel"))
    who, how = [], []
    for uscc, also, channel in messages:
        for u in [uscc, *(x for x in also.split(",") if x)]:
            if u in index:  # the county's behaviour reads any written message as a text
                who.append(index[u])
                how.append("sms" if channel in WRITTEN else channel)
    if not who:
        return len(messages)
    idx, ch = np.array(who), np.array(how)
    status = season.contact(idx, ch, (day - dt.date(season.filing_year, 1, 1)).days, filed, seen)
    by_uscc = dict(zip(usccs[idx].tolist(), status.tolist()))
    sent = dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)
    written = [u for u, c in zip(usccs[idx].tolist(), ch.tolist()) if c == "sms"]
    for label, code in policy.STATUS.items():  # the receipts, as `qifu import reminders` would bring them
        part = [u for u in written if by_uscc[u] == code]
        for chunk in range(0, len(part), 900):
            ReminderRecord.objects.filter(entity_id__in=part[chunk:chunk + 900], purpose="filing",
                                          channel__in=WRITTEN, sent_at__gte=sent,
                                          sent_at__lt=sent + dt.timedelta(days=1)).update(status=label)
    done: dict[str, list] = {}
    for task in ContactTask.objects.filter(message__planned_for=day, message__purpose="filing", status="open") \
            .select_related("message"):
        code = by_uscc.get(task.entity_id, 0)
        outcome = ("无人接听" if task.channel == "call" else "上门未遇") if code == 1 else "已接通，答应按时报送"
        done.setdefault(outcome, []).append(task)
    for outcome, tasks in done.items():
        close_tasks(tasks, outcome, now=dt.datetime.combine(day, dt.time(17, 0), tzinfo=SHANGHAI))
    return len(messages)


def _corrections(folder: Path, last: pl.DataFrame, year: int, today: dt.date, tmp: Path) -> tuple[int, int, int]:
    """Check the season's reports, send the correction notices, and let the notified firms answer:
    those with an injected error mostly correct it (their report filed again with the value it
    had), those told of a value that is right mostly explain it."""
    from qifu.checks.actions import run_check
    from qifu.checks.models import Finding
    from qifu.corrections.actions import explain, notify
    from qifu.corrections.models import CorrectionNotice
    from qifu.engine.errors import InvalidFile
    from qifu.imports.actions import import_file
    from qifu.reminders.actions import SHANGHAI
    from qifu.reminders.sender import send_due

    run_check(year)
    notify(year, today)
    send_due(now=dt.datetime.combine(today, dt.time(9, 30), tzinfo=SHANGHAI))
    notified = sorted(set(CorrectionNotice.objects.filter(report_year=year).values_list("entity_id", flat=True)))
    if not notified:
        return 0, 0, 0
    rng = np.random.default_rng([year, 5])
    errors = pl.read_csv(folder / "injected_errors.csv", infer_schema=False).filter(
        (pl.col("report_year") == str(year - 1)) & pl.col("uscc").is_in(notified))
    wrong = set(errors["uscc"].to_list())
    fix = who_corrects(wrong, rng)
    corrected = 0
    if fix:
        from qifu.reports.models import AnnualReport

        rows = _corrected(last, errors.filter(pl.col("uscc").is_in(fix)))
        if rows.height:
            filed_at = dict(AnnualReport.objects.filter(report_year=year, entity_id__in=fix, is_current=True)
                            .values_list("entity_id", "filed_at"))
            rows = rows.with_columns(pl.col("uscc").replace_strict(
                {u: (t + dt.timedelta(days=3)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
                 for u, t in filed_at.items()}, default=None).alias("filed_at")).filter(pl.col("filed_at").is_not_null())
            path = tmp / "corrections.csv"
            rows.write_csv(path)
            try:
                import_file("reports", path)
            except InvalidFile as e:  # a value the county injected that cannot be put back cleanly: skip that firm
                rows = rows.with_row_index("i").filter(~pl.col("i").is_in([err.row - 2 for err in e.errors])).drop("i")
                rows.write_csv(path)
                import_file("reports", path)
            run_check(year)
            corrected = rows.height
    explained = 0
    for finding in Finding.objects.filter(report_year=year, status="open", notices__isnull=False) \
            .exclude(entity_id__in=wrong).distinct().order_by("id"):
        if rng.random() < EXPLAINS:
            explain(finding, "经核对，该数值填报无误，与账册一致")
            explained += 1
    return len(notified), corrected, explained


def who_corrects(wrong: set[str], rng: np.random.Generator) -> list[str]:
    """Which of the firms told of an error they made correct it: drawn in the codes' order. (A
    set's order differs between processes, each hashing strings with a seed of its own: drawn in
    that order, the same seed made a different demo each run.)"""
    return [u for u in sorted(wrong) if rng.random() < CORRECTS]


def _corrected(last: pl.DataFrame, errors: pl.DataFrame) -> pl.DataFrame:
    """The reports of ``errors``' entities with each injected value put back as it was."""
    reports = last.filter(pl.col("uscc").is_in(errors["uscc"].implode()))
    for row in errors.iter_rows(named=True):
        for field, original in zip((row["fields"] or "").split(";"), (row["original"] or "").split(";")):
            original = "" if original == "nan" else re.sub(r"^(-?\d+)\.0$", r"\1", original)
            if field in reports.columns:
                reports = reports.with_columns(pl.when(pl.col("uscc") == row["uscc"]).then(pl.lit(original))
                                               .otherwise(pl.col(field)).alias(field))
    return reports
