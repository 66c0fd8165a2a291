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
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from qifu import config, db
from qifu.engine import reference
from qifu.engine.contract import REMINDERS_SENT_COLUMNS
from qifu.engine.files import own_tmp
from qifu.engine.reminders import features, policy
from qifu.imports.models import ImportRun
from qifu.reminders import decency, practice, sender
from qifu.reminders.models import ContactTask, OutboxMessage, ReminderRecord

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
    timings: dict[str, float] = field(default_factory=dict)


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


def load(today: dt.date, light: bool = False) -> dict[str, pl.DataFrame]:
    """What the bureau has, from the database (times in local time). ``light``: only what a
    day needs once the season's plan is known — this season's contacts and filings."""
    first = today.year - 4
    registry = _registry()
    if light:
        filings = _frame("""SELECT uscc, report_year, MIN(filed_at) AS filed_at FROM reports_annualreport
                            WHERE report_year = %s GROUP BY uscc, report_year""", [today.year - 1])
        adapt = connection.ops.adapt_datetimefield_value
        contacts = _frame("""SELECT uscc, COUNT(*) AS season_contacts, MAX(sent_at) AS last_sent
                             FROM reminders_reminderrecord WHERE sent_at >= %s AND sent_at < %s GROUP BY uscc""",
                          [adapt(dt.datetime(today.year, 1, 1, tzinfo=SHANGHAI)),
                           adapt(dt.datetime.combine(today, dt.time(0), tzinfo=SHANGHAI))])
        return {"registry": registry, "filings": filings.with_columns(_datetime("filed_at")),
                "contacts": contacts.with_columns(_datetime("last_sent")), "season": season_contacts(today)}
    filings = _frame("""SELECT uscc, report_year, MIN(filed_at) AS filed_at FROM reports_annualreport
                        WHERE report_year >= %s GROUP BY uscc, report_year""", [first]).with_columns(_datetime("filed_at"))
    history = _frame("""SELECT uscc, sent_at, channel, status FROM reminders_reminderrecord
                        WHERE sent_at >= %s""", [f"{first}-12-31"]).with_columns(_datetime("sent_at"))
    year = today.year - 2
    tax = _frame("SELECT uscc, tax_paid, declared_sales FROM sources_taxrecord WHERE year = %s", [year])
    social = _frame("SELECT uscc, insured_count FROM sources_socialrecord WHERE year = %s", [year])
    return {"registry": registry, "filings": filings, "history": history, "tax": tax, "social": social,
            "season": season_contacts(today)}


WRITTEN = ("sms", "email", "wechat", "letter")  # for the ladder, any written message is a text


def season_contacts(today: dt.date) -> pl.DataFrame:
    """This season's filing reminders before ``today``, per entity, as the ladder reads them
    (``policy.Seen``): how many, the last one's day, channel and delivery status (delivery
    receipts and call outcomes update it), texts that reached or failed, calls unanswered."""
    adapt = connection.ops.adapt_datetimefield_value
    start = adapt(dt.datetime(today.year, 1, 1, tzinfo=SHANGHAI))
    end = adapt(dt.datetime.combine(today, dt.time(0), tzinfo=SHANGHAI))
    written = ", ".join(f"'{c}'" for c in WRITTEN)
    table = ReminderRecord._meta.db_table
    where = "purpose = 'filing' AND sent_at >= %s AND sent_at < %s"
    counts = _frame(f"""SELECT uscc, COUNT(*) AS contacts, MAX(sent_at) AS last_sent,
                               SUM(CASE WHEN channel IN ({written}) AND status <> 'failed' THEN 1 ELSE 0 END) AS texts_reached,
                               SUM(CASE WHEN channel IN ({written}) AND status = 'failed' THEN 1 ELSE 0 END) AS texts_failed,
                               SUM(CASE WHEN channel = 'call' AND status = 'failed' THEN 1 ELSE 0 END) AS calls_failed
                        FROM {table} WHERE {where} GROUP BY uscc""", [start, end])
    last = _frame(f"""SELECT r.uscc, r.channel AS last_channel, r.status AS last_status FROM {table} r
                      JOIN (SELECT uscc, MAX(sent_at) AS m FROM {table} WHERE {where} GROUP BY uscc) l
                      ON r.uscc = l.uscc AND r.sent_at = l.m WHERE r.purpose = 'filing'""", [start, end])
    if counts.height == 0:
        return pl.DataFrame(schema={"uscc": pl.Utf8, "contacts": pl.Int64, "last_day": pl.Int64, "last_channel": pl.Utf8,
                                    "last_status": pl.Utf8, "texts_reached": pl.Int64, "texts_failed": pl.Int64,
                                    "calls_failed": pl.Int64})
    # two contacts at the same moment (a text and a call): the call is the later step
    last = (last.with_columns(pl.col("last_channel").replace(dict.fromkeys(WRITTEN, "sms")))
            .sort("uscc", pl.col("last_channel").replace_strict({"sms": 0, "call": 1, "visit": 2}, default=0))
            .unique("uscc", keep="last"))
    return (counts.with_columns(_datetime("last_sent"))
            .with_columns((pl.col("last_sent").dt.date() - pl.lit(dt.date(today.year, 1, 1))).dt.total_days()
                          .alias("last_day"))
            .join(last, on="uscc", how="left")
            .select("uscc", pl.col("contacts").cast(pl.Int64), "last_day", "last_channel", "last_status",
                    *(pl.col(c).cast(pl.Int64) for c in ("texts_reached", "texts_failed", "calls_failed"))))


def seen_for(registry: pl.DataFrame, season: pl.DataFrame) -> policy.Seen:
    """``policy.Seen`` in registry order from ``season_contacts``."""
    frame = registry.select("uscc").join(season, on="uscc", how="left", maintain_order="left")
    seen = policy.Seen.empty(registry.height)
    if season.height == 0:
        return seen
    has = frame["contacts"].is_not_null().to_numpy()
    seen.contacts[has] = frame["contacts"].to_numpy()[has]
    seen.last_day[has] = frame["last_day"].to_numpy()[has]
    seen.last_channel[has] = frame["last_channel"].fill_null("").to_numpy()[has]
    seen.last_status[has] = frame["last_status"].replace_strict(policy.STATUS, default=2).to_numpy()[has]
    for name in ("texts_reached", "texts_failed", "calls_failed"):
        getattr(seen, name)[has] = frame[name].to_numpy()[has]
    return seen


REGISTRY_COLUMNS = ["uscc", "name", "entity_type", "legal_rep", "phone", "email", "established_on", "status"]


def _registry() -> pl.DataFrame:
    """The registry, sorted by credit code: from the analytical copy when it is current (a
    tenth of the time of 240,000 rows through the database driver), else from the database."""
    from qifu import analytics
    from qifu.registry.models import Township

    paths = analytics.paths(("registry",))
    if paths is None:
        frame = _frame(f"SELECT {', '.join(REGISTRY_COLUMNS)}, town_id FROM registry_entity ORDER BY uscc")
    else:
        codes = dict(Township.objects.values_list("name", "code"))
        frame = (pl.read_parquet(paths["registry"], columns=[*REGISTRY_COLUMNS, "town"])
                 .with_columns(pl.col("town").replace_strict(codes, default=None).alias("town_id")).drop("town")
                 .sort("uscc"))
    return frame.with_columns(pl.col("established_on").cast(pl.Utf8).str.slice(0, 10).str.to_date(strict=False))


def plan_key(filing_year: int) -> str:
    """What the season's plan was learnt from: the registry and activity data (their latest
    imports that changed anything), past seasons' reports (revisions only add rows) and the
    contact history before the season. Unchanged during a season unless those change; each
    count reads an index only."""
    fy = filing_year
    parts = []
    for sql, params in (
        *((f"SELECT MAX(id) FROM {ImportRun._meta.db_table} WHERE kind = %s AND (inserted > 0 OR updated > 0)",
           [kind]) for kind in ("registry", "tax", "social")),
        ("SELECT COUNT(*), MAX(id) FROM reports_annualreport WHERE report_year >= %s AND report_year < %s",
         [fy - 4, fy - 1]),
        ("SELECT COUNT(*), MAX(id) FROM reminders_reminderrecord WHERE sent_at < %s",
         [connection.ops.adapt_datetimefield_value(dt.datetime(fy, 1, 1, tzinfo=SHANGHAI))]),
    ):
        with connection.cursor() as cur:
            cur.execute(sql, params)
            parts.append(str(cur.fetchone()))
    parts.append(policy.VERSION)
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def plan_path(filing_year: int) -> Path:
    return config.data_dir() / "models" / f"reminder-plan-{filing_year}.npz"


def cached_plan(filing_year: int, key: str) -> tuple[np.ndarray, policy.Plan] | None:
    path = plan_path(filing_year)
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            return f["uscc"], policy.Plan(f["plan"], f["proba"], str(f["source"]), json.loads(str(f["check"])))
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None


def save_plan(filing_year: int, key: str, usccs: list[str], plan: policy.Plan) -> None:
    path = plan_path(filing_year)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = own_tmp(path)  # the worker's run and a `qifu remind run` may save it at once
    with tmp.open("wb") as fh:  # a file, not a name: savez would add ".npz" to the name
        np.savez(fh, key=np.array(key), uscc=np.array(usccs), plan=plan.plan, proba=plan.proba,
                 source=np.array(plan.source), check=np.array(json.dumps(plan.check or {})))
    tmp.replace(path)


def season_plan(today: dt.date, data: dict[str, pl.DataFrame]) -> policy.Plan:
    """The season's plan for every registered entity (in ``data["registry"]`` order): learnt
    once per season and kept under $QIFU_DATA_DIR/models, relearnt when its inputs change."""
    fy = today.year
    reg = data["registry"]
    key = data.get("plan_key") or plan_key(fy)
    hit = cached_plan(fy, key)
    if hit is not None and hit[0].tolist() == reg["uscc"].to_list():
        return hit[1]
    if "tax" not in data:  # a light load: the inputs changed since the plan was learnt
        data.update(load(today))
        reg = data["registry"]
    activity = reg.select("uscc").join(data["tax"], on="uscc", how="left").join(data["social"], on="uscc", how="left")
    seasons = _seasons(data, [fy - 3, fy - 2, fy - 1])
    result = policy.learn(reg, seasons, activity, dt.date(fy, 1, 1))
    save_plan(fy, key, reg["uscc"].to_list(), result)
    return result


def _seasons(data, filing_years: list[int]) -> list[pl.DataFrame]:
    out = []
    for fy in filing_years:
        f = data["filings"].filter(pl.col("report_year") == fy - 1).select("uscc", "filed_at")
        out.append(features.season_table(data["registry"]["uscc"], f, data["history"], fy))
    return out


def holdout_mask(usccs: list[str], season: int, share: float) -> np.ndarray:
    """The first 32 bits of SHA-1("season:code") below share × 2³²: stable for a season
    whatever else changes."""
    cut, prefix, sha1 = int(share * 2**32), f"{season}:".encode(), hashlib.sha1
    return np.array([int.from_bytes(sha1(prefix + u.encode()).digest()[:4], "big") < cut for u in usccs], dtype=bool)


def decide(today: dt.date, data: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, dict[str, int]]:
    """Today's contacts: one row per entity with channel, group and reason."""
    fy = today.year
    plan = season_plan(today, data)
    reg = data["registry"]
    as_of = dt.date(fy, 1, 1)

    day = (today - as_of).days
    usccs = reg["uscc"].to_list()
    n = len(usccs)
    share = float(config.get("QIFU_HOLDOUT_SHARE", "0.05") or 0.05)
    holdout = holdout_mask(usccs, fy, share)
    channel = np.full(n, "", dtype="<U5")
    seen = seen_for(reg, data["season"])
    idx, ch = policy.due_today(plan, fy, day, seen)
    channel[idx] = ch
    if (config.get("QIFU_HOLDOUT_POLICY", "blanket") or "blanket") == "blanket":
        holdout_channel = practice.blanket().channel_on(today)
    else:
        holdout_channel = ""
    channel[holdout] = holdout_channel
    filed = data["filings"].filter((pl.col("report_year") == fy - 1) & (pl.col("filed_at").dt.date() < today))
    due = reg.with_columns(
        pl.Series("channel", channel), pl.Series("row", np.arange(n)),
        pl.Series("group", np.where(holdout, "holdout", "treated")),
        pl.Series("plan", np.array(policy.PLANS)[plan.plan]),
    ).filter(
        (pl.col("status") == "active") & (pl.col("established_on") <= dt.date(fy - 1, 12, 31))
        & ~pl.col("uscc").is_in(filed["uscc"].implode())
    )
    groups = {"due_unfiled": due.height, **{p: int((due["plan"] == p).sum()) for p in policy.PLANS},
              "holdout": int((due["group"] == "holdout").sum())}
    today_rows = due.filter(pl.col("channel") != "")
    # the reason, only for today's contacts (the plan's own words and the model's forecast)
    reasons = [plan.reason(i, seen, day, c) if g == "treated" else "对照组：按原有做法统一提醒"
               for i, g, c in zip(today_rows["row"].to_list(), today_rows["group"].to_list(),
                                  today_rows["channel"].to_list())]
    today_rows = today_rows.with_columns(pl.Series("reason", reasons, dtype=pl.Utf8)).drop("row")
    return _decent(today_rows, today, data), groups


def _decent(rows: pl.DataFrame, today: dt.date, data) -> pl.DataFrame:
    """Rules of decency (``decency``): spacing, season cap, opt-outs, a channel that reaches."""
    if "contacts" in data:  # a light load: the history already counted per entity by the database
        done = data["contacts"].select("uscc", "season_contacts", pl.col("last_sent").dt.date().alias("last_contact"))
    else:
        done = decency.per_entity(data["history"].select("uscc", pl.col("sent_at").dt.date().alias("day")), today)
    stats = decency.season_stats(done, decency.waiting_contacts(today), today)
    return decency.resolve_channel(decency.flag(rows, stats, today))


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
    started = time.perf_counter()
    timings: dict[str, float] = {}
    db.bulk_work()
    key = plan_key(today.year)
    data = load(today, light=cached_plan(today.year, key) is not None)
    data["plan_key"] = key
    rows, groups = decide(today, data)
    timings["decide"] = time.perf_counter() - started
    skipped = {"spacing": int((~rows["spaced"]).sum()), "season_cap": int((~rows["capped"]).sum())} if rows.height else {}
    rows = rows.filter(pl.col("spaced") & pl.col("capped"))
    # no township officer is sent again to an address a visit this season found empty: the
    # finding waits for its listing decision (abnormal.actions.unreachable_due) instead
    empty = pl.col("uscc").is_in(list(found_empty(today))) & (pl.col("channel") == "visit")
    if rows.height and (n := int(rows.select(empty.sum()).item())):
        skipped["address_empty"] = n
        rows = rows.filter(~empty)
    send_at = dt.datetime.combine(today, dt.time(9, 0), tzinfo=SHANGHAI)
    year = today.year - 1
    # One text or email per recipient (an agent's number gets one message listing its clients);
    # one call or visit per entity.
    by_recipient = pl.col("channel").is_in(["sms", "email"]) & (pl.col("recipient").fill_null("") != "")
    grouped = (rows.with_columns(pl.when(by_recipient).then(pl.col("recipient")).otherwise(pl.col("uscc")).alias("key_to"))
               .group_by("channel", "key_to", maintain_order=True)
               .agg(pl.col("uscc"), pl.col("name"), pl.col("legal_rep").fill_null(""),
                    pl.col("recipient").first(), pl.col("reason").first(), pl.col("group").first()))
    adapt = connection.ops.adapt_datetimefield_value
    now, at, day = adapt(timezone.now()), adapt(send_at), connection.ops.adapt_datefield_value(today)
    messages = [
        (f"filing:{channel}:{key_to}:{today.isoformat()}", usccs[0], ",".join(usccs[1:]), "filing", channel,
         recipient or "", _text(names, reps, year), reason, group, day,
         OutboxMessage.Status.PENDING if channel in ("sms", "email") else OutboxMessage.Status.TASK, 0, at, "", "", now)
        for channel, key_to, usccs, names, reps, recipient, reason, group in grouped.iter_rows()
    ]
    q = connection.ops.quote_name
    cols = ("key", "uscc", "also_for", "purpose", "channel", "recipient", "body", "reason", "group", "planned_for",
            "status", "attempts", "next_attempt_at", "last_error", "provider_id", "created_at")
    with transaction.atomic(), connection.cursor() as cur:
        # executemany, not bulk_create: a heavy day has 100,000 messages
        cur.executemany(f"INSERT INTO {OutboxMessage._meta.db_table} ({', '.join(q(c) for c in cols)}) "
                        f"VALUES ({', '.join(['%s'] * len(cols))}) ON CONFLICT DO NOTHING", messages)
        created = list(OutboxMessage.objects.filter(planned_for=today, status=OutboxMessage.Status.TASK,
                                                    task__isnull=True).only("id", "entity_id", "channel", "purpose",
                                                                            "also_for"))
        cur.executemany(f"INSERT INTO {ContactTask._meta.db_table} (message_id, uscc, channel, due_on, status, "
                        "outcome) VALUES (%s, %s, %s, %s, 'open', '')",
                        [(m.id, m.entity_id, m.channel, day) for m in created])
        sender.record_history(created, send_at)
    timings["store"] = time.perf_counter() - started - timings["decide"]
    sent = sender.send_due(now=send_at)
    timings["send"] = time.perf_counter() - started - timings["decide"] - timings["store"]
    out_rows = sent_rows(today, send_at)
    if out is not None:
        write_sent(out_rows, out)
    timings["write"] = time.perf_counter() - started - sum(timings.values())
    return RunResult(today, groups["due_unfiled"], len(messages), groups, sent, len(created), skipped, out_rows, timings)


def sent_rows(today: dt.date, planned_at: dt.datetime) -> list[dict]:
    """Contract §2.2 rows for the day's reminders that went out (texts and emails sent, call
    and visit tasks assigned), whoever sent them: this run or the schedule in `qifu serve`."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT uscc, channel, purpose, recipient, sent_at, body, reason FROM {OutboxMessage._meta.db_table} "
                    "WHERE planned_for = %s AND purpose = 'filing' AND status IN (%s, %s) ORDER BY id",
                    [connection.ops.adapt_datefield_value(today), OutboxMessage.Status.SENT, OutboxMessage.Status.TASK])
        rows = cur.fetchall()
    local: dict = {}  # a day's messages share a handful of sending times

    def when(value) -> str:
        if value not in local:
            at = value if isinstance(value, dt.datetime) or value is None else dt.datetime.fromisoformat(str(value))
            at = planned_at if at is None else (at if at.tzinfo else at.replace(tzinfo=dt.UTC))
            local[value] = at.astimezone(SHANGHAI).isoformat()
        return local[value]

    return [{"uscc": u, "channel": ch, "purpose": p, "recipient": r, "sent_at": when(sent_at),
             "message": body if ch in ("sms", "email") else reason}
            for u, ch, p, r, sent_at, body, reason in rows]


def write_sent(rows: list[dict], path: Path) -> None:
    """Contract §2.2: one row per message sent (calls and visits: one row per task)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        import json

        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(REMINDERS_SENT_COLUMNS)
        w.writerows([r[c] for c in REMINDERS_SENT_COLUMNS] for r in rows)


# a visit that finds nobody at the registered address, nor any sign the entity works there, is
# the fact (查实) on which it is listed as unreachable (abnormal.actions.unreachable_due)
NOT_AT_ADDRESS = "登记住所查无此主体"
OUTCOMES = ("已接通，答应按时报送", "已接通，已报送", "已接通，已更正", "无人接听", "号码错误或停机", "上门未遇",
            NOT_AT_ADDRESS, "已歇业或注销", "其他")
UNREACHED = ("无人接听", "号码错误或停机", "上门未遇", NOT_AT_ADDRESS)


def address_findings(visits: QuerySet[ContactTask] | None = None) -> dict[str, ContactTask]:
    """Each entity's standing finding that nobody is at its registered address: its last visit
    closed ``NOT_AT_ADDRESS``, unless a later visit reached it (another that found nobody leaves
    it standing). ``visits``: the visits to read (None: all); only entities with such a finding
    are read. The findings come with their entity and its township."""
    visits = ContactTask.objects.all() if visits is None else visits
    visits = visits.filter(channel="visit", status=ContactTask.Status.DONE)
    found: dict[str, int] = {}
    for pk, uscc, outcome in (visits.filter(entity__in=visits.filter(outcome__startswith=NOT_AT_ADDRESS).values("entity"))
                              .order_by(F("closed_at").asc(nulls_first=True), "pk")
                              .values_list("pk", "entity_id", "outcome")):
        if outcome.startswith(NOT_AT_ADDRESS):
            found[uscc] = pk
        elif not outcome.startswith(UNREACHED):
            found.pop(uscc, None)
    tasks = ContactTask.objects.filter(pk__in=list(found.values())).select_related("entity", "entity__town")
    return {t.entity_id: t for t in tasks}


def found_empty(today: dt.date) -> set[str]:
    """The entities a visit of ``today``'s season (planned from 1 January) found not at their
    registered address, not found there since (``address_findings``)."""
    return set(address_findings(ContactTask.objects.filter(due_on__gte=dt.date(today.year, 1, 1), due_on__lte=today)))


def close_task(task: ContactTask, outcome: str, detail: str = "") -> None:
    """A call or visit done: the task, its message and the contact history take the outcome, so
    the next day's run sees an unanswered call (and calls again, then visits)."""
    close_tasks([task], outcome, detail)


def close_tasks(tasks: list[ContactTask], outcome: str, detail: str = "", now: dt.datetime | None = None) -> None:
    """``close_task`` for many tasks with one outcome, in a handful of statements."""
    if outcome not in OUTCOMES:
        raise ValueError("请选择办理结果")
    if outcome == NOT_AT_ADDRESS and any(t.channel != "visit" for t in tasks):
        raise ValueError(f"“{NOT_AT_ADDRESS}”只能在上门核查后选择")
    now = now or timezone.now()
    reached = outcome not in UNREACHED
    text = f"{outcome}{'：' + detail if detail else ''}"[:1000]
    status = "delivered" if reached else "failed"
    with transaction.atomic():
        for chunk in range(0, len(tasks), 900):
            part = tasks[chunk:chunk + 900]
            ContactTask.objects.filter(pk__in=[t.pk for t in part]).update(status=ContactTask.Status.DONE, outcome=text,
                                                                          closed_at=now)
            OutboxMessage.objects.filter(pk__in=[t.message_id for t in part]).update(
                status=OutboxMessage.Status.DELIVERED if reached else OutboxMessage.Status.FAILED)
            by_time: dict[tuple[dt.date, str], list[str]] = {}
            for t in part:
                m = t.message
                by_time.setdefault((m.planned_for, m.channel), []).extend(
                    [m.entity_id, *(x for x in m.also_for.split(",") if x)])
            for (day, channel), usccs in by_time.items():
                at = dt.datetime.combine(day, dt.time(9, 0), tzinfo=SHANGHAI)
                ReminderRecord.objects.filter(entity_id__in=usccs, channel=channel, sent_at=at).update(status=status)
    for t in tasks:
        t.status, t.outcome, t.closed_at = ContactTask.Status.DONE, text, now
