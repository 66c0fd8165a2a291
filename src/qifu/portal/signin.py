"""Enterprise sign-in: the credit code plus a one-time code sent through the outbox.

Limits (per credit code): one code a minute, five an hour; a code lives ten minutes; five
wrong codes lock sign-in for thirty minutes. Codes are stored hashed and compared in constant
time; the code goes only to the phone or email the registry holds, never to one typed in.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from qifu.accounts import masking
from qifu.engine import uscc as uscc_mod
from qifu.portal.models import SignInCode
from qifu.registry.models import Entity
from qifu.reminders import sender
from qifu.reminders.models import OutboxMessage

CODE_TTL = dt.timedelta(minutes=10)
RESEND_AFTER = dt.timedelta(seconds=60)
MAX_PER_HOUR = 5
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=30)


class SignInError(Exception):
    """A message the filer can act on."""


def _hash(uscc: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{uscc}:{code}".encode(), "sha256").hexdigest()


def _recent_failures(uscc: str, now: dt.datetime) -> int:
    """Wrong codes entered for ``uscc`` within the lockout window."""
    recent = SignInCode.objects.filter(uscc=uscc, created_at__gte=now - LOCKOUT)
    return recent.aggregate(n=Sum("failures"))["n"] or 0


def locked_until(uscc: str, now: dt.datetime) -> dt.datetime | None:
    if _recent_failures(uscc, now) >= MAX_FAILURES:
        recent = SignInCode.objects.filter(uscc=uscc, created_at__gte=now - LOCKOUT)
        last = recent.order_by("-created_at").first()
        return last.created_at + LOCKOUT if last else now + LOCKOUT
    return None


def destinations(entity: Entity) -> dict[str, str]:
    """The registered contacts a code may go to, by channel."""
    out = {}
    if entity.phone and entity.phone.strip():
        out["sms"] = entity.phone.strip()
    if entity.email and "@" in entity.email:
        out["email"] = entity.email.strip()
    return out


@dataclass
class Sent:
    channel: str
    masked: str
    message_status: str


def request_code(raw_uscc: str, channel: str, ip: str | None = None, now: dt.datetime | None = None) -> Sent:
    now = now or timezone.now()
    code18 = uscc_mod.normalise(raw_uscc or "")
    problem = uscc_mod.problem(code18)
    if problem:
        raise SignInError(f"统一社会信用代码有误：{problem}")
    entity = Entity.objects.filter(uscc=code18).first()
    if entity is None:
        raise SignInError("没有查到这个统一社会信用代码的登记信息，请核对后再试，或联系所在镇街")
    targets = destinations(entity)
    if channel not in targets:
        have = "、".join({"sms": "手机", "email": "邮箱"}[c] for c in targets) or "无"
        raise SignInError(f"登记信息里没有可用的{'手机号' if channel == 'sms' else '邮箱'}（已登记：{have}），"
                          f"请换一种方式或联系所在镇街更新联系方式")
    if until := locked_until(code18, now):
        raise SignInError(f"验证码输错次数过多，已暂停登录，请于{timezone.localtime(until):%H:%M}后再试")
    with transaction.atomic():
        recent = SignInCode.objects.select_for_update().filter(uscc=code18, created_at__gte=now - dt.timedelta(hours=1))
        if recent.filter(created_at__gt=now - RESEND_AFTER).exists():
            raise SignInError("验证码已发送，请 1 分钟后再重新获取")
        if recent.count() >= MAX_PER_HOUR:
            raise SignInError("一小时内获取验证码次数过多，请稍后再试")
        code = f"{secrets.randbelow(10**6):06d}"
        recipient = targets[channel]
        masked = masking.phone(recipient) if channel == "sms" else masking.email(recipient)
        record = SignInCode.objects.create(uscc=code18, code_hash=_hash(code18, code), channel=channel,
                                           sent_to=masked, created_at=now, expires_at=now + CODE_TTL, ip=ip)
        message = OutboxMessage.objects.create(
            key=f"signin:{code18}:{record.id}", entity=entity, purpose="signin", channel=channel,
            recipient=recipient, body=f"【企服】您的登录验证码是 {code}，10 分钟内有效。工作人员不会向您索要验证码，请勿告诉他人。",
            reason="企业登录", planned_for=timezone.localdate(now), next_attempt_at=now,
        )
    outcome = sender.send_one(message, now)
    if outcome != "sent":
        raise SignInError("验证码发送失败，请稍后再试；多次失败请联系所在镇街")
    return Sent(channel, masked, outcome)


def verify(raw_uscc: str, code: str, now: dt.datetime | None = None) -> Entity:
    now = now or timezone.now()
    code18 = uscc_mod.normalise(raw_uscc or "")
    if until := locked_until(code18, now):
        raise SignInError(f"验证码输错次数过多，已暂停登录，请于{timezone.localtime(until):%H:%M}后再试")
    with transaction.atomic():
        latest = (SignInCode.objects.select_for_update()
                  .filter(uscc=code18, used_at__isnull=True, expires_at__gt=now).order_by("-created_at").first())
        if latest is None:
            raise SignInError("验证码已失效，请重新获取")
        right = hmac.compare_digest(latest.code_hash, _hash(code18, (code or "").strip()))
        if right:
            latest.used_at = now
            latest.save(update_fields=["used_at"])
        else:  # counted in this transaction, which commits: the error is raised after it
            latest.failures += 1
            latest.save(update_fields=["failures"])
    if not right:
        left = MAX_FAILURES - _recent_failures(code18, now)
        raise SignInError(f"验证码不正确，还可以再试 {left} 次" if left > 0 else "验证码输错次数过多，已暂停登录 30 分钟")
    return Entity.objects.get(uscc=code18)
