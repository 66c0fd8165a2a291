"""The firms an automatic policy pays are told through the outbox and its sender (quiet
hours, opt-outs, exactly once): one message per firm and policy, keyed so that matching again
never tells a firm twice. A firm reachable by neither text nor email still sees the match in
the portal and on its page."""

from __future__ import annotations

import datetime as dt

import polars as pl
from django.utils import timezone

from qifu.policies.models import Match
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"


def key(code: str, uscc: str) -> str:
    return f"policy:{code}:{uscc}"[:120]


def body(title: str, code: str, amount) -> str:
    return (f"【企服】贵单位符合“{title}”（{code}）享受条件，预计可得 {amount.normalize():f} 万元，无需申请。"
            f"请登录企服平台核对，并确认收款账户。{FREE}")


def tell_eligible(codes: list[str], now: dt.datetime) -> int:
    """Messages for the eligible, not yet told firms of the automatic policies ``codes``."""
    if not codes:
        return 0
    rows = list(Match.objects.filter(policy__code__in=codes, status=Match.Status.ELIGIBLE).values_list(
        "entity_id", "policy__code", "policy__title", "amount", "entity__phone", "entity__email"))
    told = set(OutboxMessage.objects.filter(purpose="policy", key__in=[key(r[1], r[0]) for r in rows])
               .values_list("key", flat=True))
    rows = [r for r in rows if key(r[1], r[0]) not in told]
    if not rows:
        return 0
    frame = decency.resolve_channel(pl.DataFrame(
        {"uscc": [r[0] for r in rows], "channel": ["sms"] * len(rows), "phone": [r[4] for r in rows],
         "email": [r[5] for r in rows]}, schema=dict.fromkeys(("uscc", "channel", "phone", "email"), pl.Utf8)))
    today = timezone.localdate(now)
    messages = []
    for r, channel, recipient in zip(rows, frame["channel"], frame["recipient"]):
        if channel not in ("sms", "email") or not recipient:
            continue
        messages.append(OutboxMessage(
            key=key(r[1], r[0]), entity_id=r[0], purpose="policy", channel=channel, recipient=recipient,
            body=body(r[2], r[1], r[3]), reason=f"符合政策 {r[1]}（免申即享）", planned_for=today, next_attempt_at=now))
    OutboxMessage.objects.bulk_create(messages, batch_size=2000, ignore_conflicts=True)
    return len(messages)
