"""Enterprise sign-in: the credit code plus a one-time code sent through the outbox.

Limits, each counted atomically in the database (``accounts.ratelimits``), so they hold across
the server's processes and under concurrent requests:
- per credit code: one code a minute, five an hour; five wrong codes lock it until the end of
  the half-hour (an hour of 10:00–10:30 locks until 10:30);
- per client address: ``QIFU_SIGNIN_PER_ADDRESS`` codes an hour (default 10);
- for the county: ``QIFU_SIGNIN_PER_HOUR`` codes an hour (default 2000): the SMS budget.

A known and an unknown credit code get the same answer, counted against the same limits, and
the code is sent after the answer is given (``dispatch``), so neither the page nor its timing
says whether a credit code is registered or which contacts it has. The code goes only to the
phone or email the registry holds, never to one typed in. No usable code is kept anywhere a
person can read it: its HMAC is stored, and the outbox keeps the message with the code blanked.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from qifu import config
from qifu.accounts import ratelimits
from qifu.engine import uscc as uscc_mod
from qifu.portal.models import SignInCode
from qifu.registry.models import Entity
from qifu.reminders import sender
from qifu.reminders.models import OutboxMessage

CODE_TTL = dt.timedelta(minutes=10)
MAX_PER_HOUR = 5
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=30)
MINUTE, HOUR = 60, 3600
CHANNELS = {"sms": "手机", "email": "邮箱"}
BLANK = "******"

log = logging.getLogger(__name__)


class SignInError(Exception):
    """A message the filer can act on."""


def _hash(uscc: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{uscc}:{code}".encode(), "sha256").hexdigest()


def _text(code: str) -> str:
    return f"【企服】您的登录验证码是 {code}，10 分钟内有效。工作人员不会向您索要验证码，请勿告诉他人。"


def locked_until(uscc: str, now: dt.datetime) -> dt.datetime | None:
    window = int(LOCKOUT.total_seconds())
    if ratelimits.count(f"signin-fail:{uscc}", window, now) >= MAX_FAILURES:
        return ratelimits.ends(window, now)
    return None


def _locked(until: dt.datetime) -> SignInError:
    return SignInError(f"验证码输错次数过多，已暂停登录，请于{timezone.localtime(until):%H:%M}后再试")


def destinations(entity: Entity) -> dict[str, str]:
    """The registered contacts a code may go to, by channel."""
    out = {}
    if entity.phone and entity.phone.strip():
        out["sms"] = entity.phone.strip()
    if entity.email and "@" in entity.email:
        out["email"] = entity.email.strip()
    return out


@dataclass
class Requested:
    channel: str
    message: str  # the same words whether or not the credit code is registered


def request_code(raw_uscc: str, channel: str, ip: str | None = None, now: dt.datetime | None = None) -> Requested:
    now = now or timezone.now()
    code18 = uscc_mod.normalise(raw_uscc or "")
    problem = uscc_mod.problem(code18)
    if problem:  # about the typing only: says nothing of whether it is registered
        raise SignInError(f"统一社会信用代码有误：{problem}")
    if channel not in CHANNELS:
        raise SignInError("请选择用手机短信或电子邮箱接收验证码")
    if until := locked_until(code18, now):
        raise _locked(until)
    per_hour = int(config.get("QIFU_SIGNIN_PER_HOUR", "2000") or 2000)
    per_address = int(config.get("QIFU_SIGNIN_PER_ADDRESS", "10") or 10)
    if ip and not ratelimits.take(f"signin-ip:{ip}", per_address, HOUR, now):
        raise SignInError("本网络获取验证码过于频繁，请一小时后再试")
    if not ratelimits.take(f"signin-minute:{code18}", 1, MINUTE, now):
        raise SignInError("验证码已发送，请 1 分钟后再重新获取")
    if not ratelimits.take(f"signin-hour:{code18}", MAX_PER_HOUR, HOUR, now):
        raise SignInError("一小时内获取验证码次数过多，请稍后再试")
    if not ratelimits.take("signin-county", per_hour, HOUR, now):  # last: counts only what would be sent
        log.warning("登录验证码已达本小时上限 %s 条", per_hour)
        raise SignInError("当前获取验证码的人较多，请稍后再试")
    entity = Entity.objects.filter(uscc=code18).first()
    recipient = destinations(entity).get(channel) if entity else None
    if recipient and channel == "sms" and config.get("QIFU_SMS_BACKEND") is None and not config.is_demo():
        # no gateway: the fallback writes texts to files, and a code must not lie on a disk
        log.error("未配置短信通道（QIFU_SMS_BACKEND），登录验证码短信未发送")
        recipient = None
    if recipient:
        code = f"{secrets.randbelow(10**6):06d}"
        with transaction.atomic():
            record = SignInCode.objects.create(uscc=code18, code_hash=_hash(code18, code), channel=channel,
                                               sent_to=_masked(channel, recipient), created_at=now,
                                               expires_at=now + CODE_TTL, ip=ip)
            message = OutboxMessage.objects.create(
                key=f"signin:{code18}:{record.id}", entity=entity, purpose="signin", channel=channel,
                recipient=recipient, body=_text(BLANK), reason="企业登录", planned_for=timezone.localdate(now),
                next_attempt_at=now,
            )
        dispatch(message.pk, _text(code), now)  # committed: a thread's connection sees the rows
    where = CHANNELS[channel]
    return Requested(channel, f"如果该统一社会信用代码已在本辖区登记并留有{where}，验证码已发送到登记的{where}，10 分钟内有效。"
                              f"没有收到？1 分钟后可重新获取，或换一种方式；登记的联系方式有变，请联系所在镇街。")


def _masked(channel: str, recipient: str) -> str:
    from qifu.accounts import masking

    return masking.phone(recipient) if channel == "sms" else masking.email(recipient)


# The code is sent by a thread of the web process after the answer is given, so that a
# registered credit code does not answer slower (the SMS gateway or SMTP server) than an
# unknown one. ``DISPATCH = "inline"`` sends before returning (tests that run in a transaction
# the thread's connection cannot see).
DISPATCH = "background"
_executor: ThreadPoolExecutor | None = None
_pending: list[Future] = []


def dispatch(message_id: int, body: str, now: dt.datetime) -> None:
    global _executor
    if DISPATCH == "inline":
        _send(message_id, body, now, close=False)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="signin-send")
    _pending[:] = [f for f in _pending if not f.done()]
    _pending.append(_executor.submit(_send, message_id, body, now))


def wait_sent(timeout: float = 30) -> None:
    """Wait for the codes handed to the background thread (tests)."""
    for future in list(_pending):
        future.result(timeout=timeout)


def _send(message_id: int, body: str, now: dt.datetime, close: bool = True) -> None:
    """Send one code: the body with the code exists only in memory here; the stored row keeps
    the blanked text. A code that fails is not retried (the filer asks for another)."""
    try:
        message = OutboxMessage.objects.get(pk=message_id)
        message.body = body
        outcome = sender.send_one(message, now)
        if outcome != "sent":
            log.warning("登录验证码发送失败：%s", message_id)
    except Exception:
        log.exception("登录验证码发送出错：%s", message_id)
    finally:
        if close:  # the thread's own connection: kept open it would hold the database
            connection.close()


def verify(raw_uscc: str, code: str, now: dt.datetime | None = None) -> Entity:
    """The entity, if ``code`` is its latest valid code. Every attempt first reserves one of
    the credit code's ``MAX_FAILURES`` failures (atomically), so concurrent guesses cannot
    exceed them; a right code clears them."""
    now = now or timezone.now()
    code18 = uscc_mod.normalise(raw_uscc or "")
    window = int(LOCKOUT.total_seconds())
    key = f"signin-fail:{code18}"
    if not ratelimits.take(key, MAX_FAILURES, window, now):
        raise _locked(ratelimits.ends(window, now))
    with transaction.atomic():
        latest = (SignInCode.objects.select_for_update()
                  .filter(uscc=code18, used_at__isnull=True, expires_at__gt=now).order_by("-created_at").first())
        right = latest is not None and hmac.compare_digest(latest.code_hash, _hash(code18, (code or "").strip()))
        if right:
            latest.used_at = now
            latest.save(update_fields=["used_at"])
        elif latest is not None:
            latest.failures += 1
            latest.save(update_fields=["failures"])
    if latest is None:
        ratelimits.give_back(key, window, now)  # nothing to guess against: not a failure
        raise SignInError("验证码已失效，请重新获取")
    if not right:
        left = MAX_FAILURES - ratelimits.count(key, window, now)
        raise SignInError(f"验证码不正确，还可以再试 {left} 次" if left > 0 else "验证码输错次数过多，已暂停登录 30 分钟")
    ratelimits.reset(key, window, now)  # the holder of the code: earlier slips no longer count
    return Entity.objects.get(uscc=code18)
