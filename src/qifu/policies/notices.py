"""The firms an automatic policy pays are told through the outbox and its sender (quiet
hours, opt-outs, exactly once): one message per firm and policy, keyed by both, written when the
match is new, so that matching again tells nobody twice. A firm reachable by neither text nor
email still sees the match in the portal and on its page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
from django.utils import timezone

from qifu import bulk
from qifu.policies.models import Match
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"
CHUNK = 5000


def key(code: str, uscc: str) -> str:
    return f"policy:{code}:{uscc}"[:120]


def body(title: str, code: str, amount: Decimal) -> str:
    return (f"【企服】贵单位符合“{title}”（{code}）享受条件，预计可得 {amount.normalize():f} 万元，无需申请。"
            f"请登录企服平台核对，并确认收款账户。{FREE}")


def tell_new(policy, usccs: list[str], now: dt.datetime) -> int:
    """Messages for the firms newly eligible for the automatic policy ``policy`` (its definition)."""
    total = 0
    for start in range(0, len(usccs), CHUNK):
        total += _tell(policy, usccs[start:start + CHUNK], now)
    return total


def _tell(policy, usccs: list[str], now: dt.datetime) -> int:
    rows = list(Match.objects.filter(policy__code=policy.id, entity_id__in=usccs, status=Match.Status.ELIGIBLE)
                .values_list("entity_id", "amount", "entity__phone", "entity__email"))
    told = set(OutboxMessage.objects.filter(key__in=[key(policy.id, r[0]) for r in rows]).values_list("key", flat=True))
    rows = [r for r in rows if key(policy.id, r[0]) not in told]
    if not rows:
        return 0
    frame = decency.resolve_channel(pl.DataFrame(
        {"uscc": [r[0] for r in rows], "channel": ["sms"] * len(rows), "phone": [r[2] for r in rows],
         "email": [r[3] for r in rows]}, schema=dict.fromkeys(("uscc", "channel", "phone", "email"), pl.Utf8)))
    amounts = {r[0]: r[1] for r in rows}
    utc = pl.Datetime("us", "UTC")
    out = frame.filter(pl.col("channel").is_in(["sms", "email"]) & (pl.col("recipient").fill_null("") != "")).select(
        pl.col("uscc").map_elements(lambda u: key(policy.id, u), return_dtype=pl.String).alias("key"),
        pl.col("uscc"), pl.lit("").alias("also_for"), pl.lit("policy").alias("purpose"), pl.col("channel"),
        pl.col("recipient"),
        pl.col("uscc").map_elements(lambda u: body(policy.title, policy.id, amounts[u]), return_dtype=pl.String).alias("body"),
        pl.lit(f"符合政策 {policy.id}（免申即享）").alias("reason"), pl.lit("treated").alias("group"),
        pl.lit(timezone.localdate(now)).alias("planned_for"), pl.lit(OutboxMessage.Status.PENDING.value).alias("status"),
        pl.lit(0).alias("attempts"), pl.lit(now).cast(utc).alias("next_attempt_at"), pl.lit("").alias("last_error"),
        pl.lit("").alias("provider_id"), pl.lit(None, dtype=utc).alias("sent_at"),
        pl.lit(timezone.now()).cast(utc).alias("created_at"))
    bulk.insert(OutboxMessage._meta.db_table, out)
    return out.height
