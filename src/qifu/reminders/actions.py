"""`qifu remind run --date D`: decide today's reminders, store them, send them, report them.

D is "today" for every decision; nothing reads the wall clock. The decision is the learnt
policy (``engine.reminders.policy``) for the treated group, the bureau's blanket practice (or
nothing, ``QIFU_HOLDOUT_POLICY``) for a randomised holdout (``QIFU_HOLDOUT_SHARE``, default 5%),
and then the rules of decency: never after the report is filed, at most one contact per entity
per 7 days and 4 per season (``QIFU_MIN_DAYS_BETWEEN``, ``QIFU_MAX_PER_SEASON``), no texts or
emails to an opted-out recipient, one text per phone number that serves several entities.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from django.db import connection, transaction

from qifu import config
from qifu.engine import reference
from qifu.engine.contract import REMINDERS_SENT_COLUMNS
from qifu.engine.reminders import features, policy
from qifu.engine.synth import behaviour as bh
from qifu.reminders import sender
from qifu.reminders.models import ContactTask, OptOut, OutboxMessage

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class RunResult:
    date: dt.date
    due_unfiled: int
    decided: int
    groups: dict[str, int]
    sent: dict[str, int]
    tasks: int
    skipped: dict[str, int]
    rows: list[dict]


def _frame(sql: str, params: list | None = None) -> pl.DataFrame:
    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return pl.DataFrame(rows, schema=cols, orient="row", infer_schema_length=None)


def _datetime(col: str) -> pl.Expr:
    c = pl.col(col)
    return (pl.when(c.is_not_null()).then(c.cast(pl.Utf8).str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False))
            .otherwise(None) + pl.duration(hours=8)).alias(col)


def load(today: dt.date) -> dict[str, pl.DataFrame]:
    """What the bureau has, from the database (times in local time)."""
    first = today.year - 4
    registry = _frame("""SELECT uscc, name, entity_type, legal_rep, phone, email, established_on, status, town_id
                         FROM registry_entity""").with_columns(
        pl.col("established_on").cast(pl.Utf8).str.to_date(strict=False))
    filings = _frame("""SELECT uscc, report_year, MIN(filed_at) AS filed_at FROM reports_annualreport
                        WHERE report_year >= %s GROUP BY uscc, report_year""", [first]).with_columns(_datetime("filed_at"))
    history = _frame("""SELECT uscc, sent_at, channel, status FROM reminders_reminderrecord
                        WHERE sent_at >= %s""", [f"{first}-12-31"]).with_columns(_datetime("sent_at"))
    year = today.year - 2
    tax = _frame("SELECT uscc, tax_paid, declared_sales FROM sources_taxrecord WHERE year = %s", [year])
    social = _frame("SELECT uscc, insured_count FROM sources_socialrecord WHERE year = %s", [year])
    return {"registry": registry, "filings": filings, "history": history, "tax": tax, "social": social}


def _seasons(data, filing_years: list[int]) -> list[pl.DataFrame]:
    out = []
    for fy in filing_years:
        f = data["filings"].filter(pl.col("report_year") == fy - 1).select("uscc", "filed_at")
        out.append(features.season_table(data["registry"]["uscc"], f, data["history"], fy))
    return out


def holdout_mask(usccs: list[str], season: int, share: float) -> np.ndarray:
    cut = int(share * 2**32)
    return np.array([int(hashlib.sha1(f"{season}:{u}".encode()).hexdigest()[:8], 16) < cut for u in usccs])


def decide(today: dt.date, data: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, dict[str, int]]:
    """Today's contacts: one row per entity with channel, group and reason."""
    fy = today.year
    reg = data["registry"]
    activity = reg.select("uscc").join(data["tax"], on="uscc", how="left").join(data["social"], on="uscc", how="left")
    seasons = _seasons(data, [fy - 3, fy - 2, fy - 1])
    as_of = dt.date(fy, 1, 1)
    _, x_train = features.build(reg, seasons[:-1], activity, as_of - dt.timedelta(days=365))
    frame, x = features.build(reg, seasons[1:], activity, as_of)
    names = [c for c in frame.columns if c != "uscc"]
    model = policy.train(x_train, seasons[-1]["label"].to_numpy())
    plan = policy.plan(model, x, names)

    day = (today - as_of).days
    usccs = reg["uscc"].to_list()
    n = len(usccs)
    share = float(config.get("QIFU_HOLDOUT_SHARE", "0.05") or 0.05)
    holdout = holdout_mask(usccs, fy, share)
    channel = np.full(n, "", dtype="<U5")
    idx, ch = policy.due_today(plan, fy, day)
    channel[idx] = ch
    if (config.get("QIFU_HOLDOUT_POLICY", "blanket") or "blanket") == "blanket":
        blanket = {bh.day_of(fy, m, d): "sms" for m, d in bh.BLANKET_SMS} | {bh.day_of(fy, *bh.BLANKET_CALL): "call"}
        holdout_channel = blanket.get(day, "")
    else:
        holdout_channel = ""
    channel[holdout] = holdout_channel
    reasons = np.array([plan.reason(i) if channel[i] and not holdout[i] else "" for i in range(n)], dtype=object)
    reasons[holdout & (channel != "")] = "对照组：按原有做法统一提醒"

    filed = data["filings"].filter((pl.col("report_year") == fy - 1) & (pl.col("filed_at").dt.date() < today))
    due = reg.with_columns(
        pl.Series("channel", channel), pl.Series("reason", reasons, dtype=pl.Utf8),
        pl.Series("group", np.where(holdout, "holdout", "treated")),
        pl.Series("plan", np.array(policy.PLANS)[plan.plan]),
    ).filter(
        (pl.col("status") == "active") & (pl.col("established_on") <= dt.date(fy - 1, 12, 31))
        & ~pl.col("uscc").is_in(filed["uscc"].implode())
    )
    groups = {"due_unfiled": due.height, **{p: int((due["plan"] == p).sum()) for p in policy.PLANS},
              "holdout": int((due["group"] == "holdout").sum())}
    today_rows = due.filter(pl.col("channel") != "")
    return _decent(today_rows, today, data), groups


def _decent(rows: pl.DataFrame, today: dt.date, data) -> pl.DataFrame:
    """Rules of decency: spacing, season cap, opt-outs, and a channel that can reach them."""
    min_days = int(config.get("QIFU_MIN_DAYS_BETWEEN", "7") or 7)
    cap = int(config.get("QIFU_MAX_PER_SEASON", "4") or 4)
    season_start = dt.date(today.year, 1, 1)
    # Sent messages and tasks are already in the history (sender.record_history); only messages
    # still waiting to go out are added, so that no contact is counted twice.
    waiting = OutboxMessage.objects.filter(
        planned_for__gte=season_start,
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING, OutboxMessage.Status.UNKNOWN],
    ).values_list("entity_id", "planned_for")
    past = pl.concat([
        data["history"].select("uscc", pl.col("sent_at").dt.date().alias("day")),
        pl.DataFrame(list(waiting), schema={"uscc": pl.Utf8, "day": pl.Date}, orient="row"),
    ]).filter((pl.col("day") >= season_start) & (pl.col("day") < today))
    stats = past.group_by("uscc").agg(pl.len().alias("season_contacts"), pl.col("day").max().alias("last_contact"))
    rows = rows.join(stats, on="uscc", how="left").with_columns(pl.col("season_contacts").fill_null(0))
    spaced = pl.col("last_contact").is_null() | ((pl.lit(today) - pl.col("last_contact")).dt.total_days() >= min_days)
    capped = (pl.col("group") == "holdout") | (pl.col("season_contacts") < cap)
    rows = rows.with_columns(spaced.alias("spaced"), capped.alias("capped"))
    opted = set(OptOut.objects.values_list("recipient", flat=True))
    phone = pl.col("phone").fill_null("").str.strip_chars()
    mobile = phone.str.contains(r"^(\+?86-?)?1[3-9][0-9]{9}$")
    email = pl.col("email").fill_null("").str.strip_chars()
    resolved = (
        pl.when(pl.col("channel") != "sms").then(pl.col("channel"))
        .when(mobile & ~phone.is_in(list(opted))).then(pl.lit("sms"))
        .when((email != "") & ~email.is_in(list(opted))).then(pl.lit("email"))
        .when(phone != "").then(pl.lit("call"))
        .otherwise(pl.lit("visit"))
    )
    rows = rows.with_columns(resolved.alias("channel"))
    rows = rows.with_columns(
        pl.when(pl.col("channel") == "sms").then(phone).when(pl.col("channel") == "email").then(email)
        .when(pl.col("channel") == "call").then(phone).otherwise(pl.lit("")).alias("recipient")
    )
    return rows


def _text(names: list[str], reps: list[str], year: int) -> str:
    county = reference.county()["county"]
    who = f"{reps[0]}您好：" if reps and reps[0] else "您好："
    if len(names) == 1:
        subject = f"{names[0]}"
    else:
        shown = "、".join(names[:3])
        subject = f"您联系的{shown}{'等' if len(names) > 3 else ''}{len(names)}户主体"
    return (f"【{county}市场监管局】{who}{subject}的{year}年度年报尚未报送，请在6月30日前自行登录国家企业信用信息公示系统报送。"
            f"年报不收费；本短信不含链接，凡索要费用、验证码或要求转账的都是诈骗。回复T退订")


def run_day(today: dt.date, out: Path | None = None) -> RunResult:
    data = load(today)
    rows, groups = decide(today, data)
    skipped = {"spacing": int((~rows["spaced"]).sum()), "season_cap": int((~rows["capped"]).sum())} if rows.height else {}
    rows = rows.filter(pl.col("spaced") & pl.col("capped"))
    send_at = dt.datetime.combine(today, dt.time(9, 0), tzinfo=SHANGHAI)
    year = today.year - 1
    messages = []
    towns = {}
    for (channel, recipient), group in rows.group_by("channel", "recipient", maintain_order=True):
        if channel in ("sms", "email") and recipient:
            batches = [group]  # one text per number: an agent's number gets one message listing its clients
        else:
            batches = [group[i:i + 1] for i in range(group.height)]
        for batch in batches:
            first = batch.row(0, named=True)
            key_to = recipient if channel in ("sms", "email") else first["uscc"]
            messages.append(OutboxMessage(
                key=f"filing:{channel}:{key_to}:{today.isoformat()}",
                entity_id=first["uscc"], also_for=",".join(batch["uscc"].to_list()[1:]),
                purpose="filing", channel=channel, recipient=recipient or "",
                body=_text(batch["name"].to_list(), batch["legal_rep"].fill_null("").to_list(), year),
                reason=first["reason"], group=first["group"], planned_for=today, next_attempt_at=send_at,
                status=OutboxMessage.Status.PENDING if channel in ("sms", "email") else OutboxMessage.Status.TASK,
            ))
            towns[first["uscc"]] = first["town_id"]
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True, batch_size=2000)
        created = OutboxMessage.objects.filter(planned_for=today, status=OutboxMessage.Status.TASK, task__isnull=True)
        tasks = [ContactTask(message=m, entity_id=m.entity_id, town_id=towns[m.entity_id], channel=m.channel,
                             due_on=today) for m in created]
        ContactTask.objects.bulk_create(tasks, batch_size=2000)
        for m in created:
            sender.record_history(m, send_at)
    sent = sender.send_due(now=send_at)
    done = OutboxMessage.objects.filter(planned_for=today, status__in=[OutboxMessage.Status.SENT, OutboxMessage.Status.TASK])
    out_rows = [
        {"uscc": m.entity_id, "channel": m.channel, "purpose": m.purpose, "recipient": m.recipient,
         "sent_at": (m.sent_at or send_at).astimezone(SHANGHAI).isoformat(), "message": m.body if m.channel in ("sms", "email") else m.reason}
        for m in done.order_by("id")
    ]
    if out is not None:
        write_sent(out_rows, out)
    return RunResult(today, groups["due_unfiled"], len(messages), groups, sent, len(tasks), skipped, out_rows)


def write_sent(rows: list[dict], path: Path) -> None:
    """Contract §2.2: one row per message sent (calls and visits: one row per task)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        import json

        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(REMINDERS_SENT_COLUMNS))
        w.writeheader()
        w.writerows(rows)
