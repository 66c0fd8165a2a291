"""The firms an automatic policy pays are told through the outbox and its sender (quiet
hours, opt-outs, exactly once): one message per firm and policy, keyed by both, so that
matching again tells nobody twice. A firm reachable by neither text nor
email still sees the match in the portal and on its page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
from django.utils import timezone

from qifu import bulk
from qifu.engine.policies.match import PER_WAN, micro_text
from qifu.policies.models import Match
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"


def body(title: str, code: str, amount: Decimal) -> str:
    return (f"【企服】贵单位符合“{title}”（{code}）享受条件，预计可得 {amount.normalize():f} 万元，无需申请。"
            f"请登录企服平台核对，并确认收款账户。{FREE}")


def tell_new(policy, usccs: list[str], now: dt.datetime) -> int:
    """Messages for the automatic policy ``policy`` (its definition): after a match that found
    new firms (``usccs``), every eligible firm of the policy not told yet, in one statement."""
    if not usccs:
        return 0
    from django.db import connection

    prefix = f"policy:{policy.id}:"
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT m.uscc, CAST(ROUND(m.amount * {PER_WAN}) AS BIGINT), e.phone, e.email "
            f"FROM {Match._meta.db_table} m JOIN registry_entity e ON e.uscc = m.uscc "
            f"JOIN policies_policy p ON p.id = m.policy_id "
            f"LEFT JOIN {OutboxMessage._meta.db_table} o ON o.{connection.ops.quote_name('key')} = %s || m.uscc "
            f"WHERE p.code = %s AND m.status = %s AND o.id IS NULL", [prefix, policy.id, Match.Status.ELIGIBLE])
        rows = cur.fetchall()
    if not rows:
        return 0
    rows = pl.DataFrame(rows, schema={"uscc": pl.String, "micro": pl.Int64, "phone": pl.String, "email": pl.String},
                        orient="row").with_columns(pl.concat_str([pl.lit(prefix), pl.col("uscc")]).alias("key"))
    frame = decency.resolve_channel(rows.with_columns(pl.lit("sms").alias("channel")))
    amount = micro_text(trim=True)
    head, tail = body(policy.title, policy.id, Decimal("0.5")).split("0.5")
    utc = pl.Datetime("us", "UTC")
    out = frame.filter(pl.col("channel").is_in(["sms", "email"]) & (pl.col("recipient").fill_null("") != "")).select(
        pl.col("key"), pl.col("uscc"), pl.lit("").alias("also_for"), pl.lit("policy").alias("purpose"), pl.col("channel"),
        pl.col("recipient"), pl.concat_str([pl.lit(head), amount, pl.lit(tail)]).alias("body"),
        pl.lit(f"符合政策 {policy.id}（免申即享）").alias("reason"), pl.lit("treated").alias("group"),
        pl.lit(timezone.localdate(now)).alias("planned_for"), pl.lit(OutboxMessage.Status.PENDING.value).alias("status"),
        pl.lit(0).alias("attempts"), pl.lit(now).cast(utc).alias("next_attempt_at"), pl.lit("").alias("last_error"),
        pl.lit("").alias("provider_id"), pl.lit(None, dtype=utc).alias("sent_at"),
        pl.lit(timezone.now()).cast(utc).alias("created_at"))
    bulk.insert(OutboxMessage._meta.db_table, out)
    return out.height
