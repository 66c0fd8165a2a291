"""Messages about requests, through the outbox and its sender (quiet hours, opt-outs, exactly
once): to the enterprise when its request is signed for and answered (with a request to rate
it), to the department when a request is new, due soon, overdue or escalated. An enterprise
hears about its own request however often it asked, so the filing season's spacing and cap do
not apply; opt-outs and quiet hours do. A department without an email or phone configured
sees its queue only."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"


def _when(t: dt.datetime | None) -> str:
    return f"{timezone.localtime(t):%m月%d日%H:%M}" if t else "—"


def _put(req, key: str, channel: str, recipient: str, body: str, reason: str, now: dt.datetime,
         addressee: str = OutboxMessage.Addressee.ENTITY) -> None:
    # the outbox belongs to an entity: a request without one is answered where it came in
    if not recipient or channel not in ("sms", "email") or req.entity_id is None:
        return
    OutboxMessage.objects.get_or_create(
        key=f"request:{req.number}:{key}"[:120],
        defaults=dict(entity_id=req.entity_id, addressee=addressee, purpose="request", channel=channel,
                      recipient=recipient, body=body, reason=reason, planned_for=timezone.localdate(now),
                      next_attempt_at=now),
    )


def to_enterprise(req, event: str, now: dt.datetime) -> None:
    if req.entity_id is None:
        return
    e = req.entity
    phone = req.contact_phone or e.phone
    channel, recipient = decency.reach(phone, req.contact_email or e.email, e.phone, e.email)
    dep = req.department.name if req.department_id else "承办部门"
    if event == "signed":
        body = (f"【企服】您单位的诉求（编号{req.number}）已由{dep}签收，将于{_when(req.answer_due)}前答复。"
                f"可登录企服平台查看进度。{FREE}")
    else:
        body = (f"【企服】您单位的诉求（编号{req.number}）{dep}已答复，请登录企服平台查看，并对办理结果评价"
                f"（满意、基本满意或不满意）；不满意的，15天内可要求重新办理。{FREE}")
    _put(req, f"ent:{event}", channel, recipient, body, f"诉求{'签收' if event == 'signed' else '答复'}通知", now)


def to_department(req, event: str, now: dt.datetime) -> None:
    dep = req.department
    if dep is None or not (dep.email or dep.phone) or req.entity_id is None:
        return
    what = {"new": "有新的企业诉求待签收", "due_soon": "有诉求即将超过办理时限", "overdue": "有诉求已超过办理时限",
            "escalated": "有诉求被督办"}[event]
    due = req.sign_due if req.status == "submitted" else req.answer_due
    body = f"【企服】{dep.name}：{what}（编号{req.number}，类别{req.get_category_display()}，期限{_when(due)}），请登录企服平台办理。"
    channel, recipient = dep.reach
    _put(req, f"dep:{dep.pk}:{event}:{timezone.localdate(now)}", channel, recipient, body, f"诉求{what}", now,
         addressee=OutboxMessage.Addressee.DEPARTMENT)
