"""The firms an automatic policy pays are told through the outbox and its sender (quiet
hours, opt-outs, exactly once): after a match run that found new firms, one message per firm
for every match of an automatic policy it has not been told of yet, however many policies
those are, so that a firm eligible for five subsidies gets one text, not five. The match
records when it was told (``told_at``), in the same transaction as the message, so that
matching again tells nobody twice. A firm reachable by neither text nor email is not marked
told; it still sees the match in the portal and on its page, and is told once it can be
reached and a later run finds something new."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

import polars as pl
from django.db import connection
from django.utils import timezone

from qifu import bulk
from qifu.engine.policies.match import PER_WAN, micro_text
from qifu.policies.models import Match, Policy
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"
TAIL = "无需申请。请登录企服平台核对，并确认收款账户。" + FREE
ONE = "【企服】贵单位符合“{title}”（{code}）享受条件，预计可得 {amount} 万元，" + TAIL
MANY = "【企服】贵单位符合“{title}”（{code}）等 {n} 项政策享受条件，预计合计可得 {amount} 万元，" + TAIL


def body(title: str, code: str, amount: Decimal, n: int = 1) -> str:
    """The text for one policy, or for ``title``'s and ``n`` - 1 others, ``amount`` the sum."""
    return (ONE if n == 1 else MANY).format(title=title, code=code, n=n, amount=f"{amount.normalize():f}")


def _text(template: str, columns: dict[str, pl.Expr]) -> pl.Expr:
    """``template`` written for every row, its fields taken from ``columns``."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(pl.lit(literal))
        if field is not None:
            parts.append(columns[field])
    return pl.concat_str(parts)


def reachable(entities: pl.DataFrame) -> pl.DataFrame:
    """The firms among ``entities`` (``uscc``, ``phone``, ``email``) that a text or an email
    reaches (opt-outs heeded): ``uscc``, ``channel``, ``recipient``."""
    firms = decency.resolve_channel(entities.select("uscc", "phone", "email", pl.lit("sms").alias("channel")))
    return firms.filter(pl.col("channel").is_in(["sms", "email"]) & (pl.col("recipient") != "")).select(
        "uscc", "channel", "recipient")


def tell(codes: list[str], now: dt.datetime, fresh: pl.DataFrame, reach: pl.DataFrame) -> int:
    """Messages for the eligible, untold matches of the automatic policies ``codes``: one per
    firm that ``reach`` reaches (``reachable``), naming its largest amount's policy and counting
    the others. ``fresh`` (``uscc``, ``code``, ``title``, ``micro``) are the matches this run
    stored, as told already where their firm is reached; the others are read here and marked
    told. Returns how many messages."""
    if not codes:
        return 0
    marks = ", ".join(["%s"] * len(codes))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT m.id, m.uscc, p.code, p.title, CAST(ROUND(m.amount * {PER_WAN}) AS BIGINT) "
            f"FROM {Match._meta.db_table} m JOIN {Policy._meta.db_table} p ON p.id = m.policy_id "
            f"WHERE p.code IN ({marks}) AND m.status = %s AND m.told_at IS NULL",
            [*codes, Match.Status.ELIGIBLE])
        rows = cur.fetchall()
    schema = {"id": pl.Int64, "uscc": pl.String, "code": pl.String, "title": pl.String, "micro": pl.Int64}
    untold = pl.DataFrame(rows, orient="row", schema=schema).join(reach.select("uscc"), on="uscc", how="semi")
    matches = pl.concat([untold, fresh.join(reach.select("uscc"), on="uscc", how="semi").select(
        pl.lit(None, dtype=pl.Int64).alias("id"), "uscc", "code", "title", pl.col("micro").cast(pl.Int64))])
    if matches.is_empty():
        return 0
    firms = (matches.sort(["micro", "code"], descending=[True, False]).group_by("uscc", maintain_order=True).agg(
        pl.col("code").first(), pl.col("title").first(), pl.col("code").sort().str.join("、").alias("codes"),
        pl.col("micro").sum(), pl.len().alias("n"))).join(reach, on="uscc")
    fields = {"title": pl.col("title"), "code": pl.col("code"), "n": pl.col("n").cast(pl.String),
              "amount": micro_text(trim=True)}
    text = pl.when(pl.col("n") == 1).then(_text(ONE, fields)).otherwise(_text(MANY, fields))
    utc = pl.Datetime("us", "UTC")
    # the key names the firm, the policy of its largest amount and the run (its second): a
    # match is told of once, so a firm's later message names another match or another run, and
    # no key repeats
    run = int(now.timestamp())
    out = firms.select(
        pl.concat_str([pl.lit("policy:"), pl.col("uscc"), pl.lit(":"), pl.col("code"), pl.lit(f":{run}")]).alias("key"),
        pl.col("uscc"), pl.lit("").alias("also_for"), pl.lit("policy").alias("purpose"), pl.col("channel"),
        pl.col("recipient"), text.alias("body"),
        pl.concat_str([pl.lit("符合政策 "), pl.col("codes"), pl.lit("（免申即享）")]).alias("reason"),
        pl.lit("treated").alias("group"), pl.lit(timezone.localdate(now)).alias("planned_for"),
        pl.lit(OutboxMessage.Status.PENDING.value).alias("status"), pl.lit(0).alias("attempts"),
        pl.lit(now).cast(utc).alias("next_attempt_at"), pl.lit("").alias("last_error"),
        pl.lit("").alias("provider_id"), pl.lit(None, dtype=utc).alias("sent_at"),
        pl.lit(timezone.now()).cast(utc).alias("created_at")).sort("key")  # in the unique index's order
    bulk.insert(OutboxMessage._meta.db_table, out)
    bulk.update(Match._meta.db_table, untold.select("id", pl.lit(now).cast(utc).alias("told_at")), key=["id"])
    return out.height
