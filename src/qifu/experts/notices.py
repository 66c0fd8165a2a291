"""Messages to expert partners, through the outbox and its sender (quiet hours, exactly once):
when the broker confirms an expert who has a desk (`qifu expert-account`) for a need, the
expert is asked, by text or email, to sign in and answer; and each morning an expert with a
desk hears of the new needs in their line that they could offer to take (``new_needs``). An
expert reached by neither hears from the broker. The outbox belongs to an entity, so a message
is filed under a need's firm, as a department's notices are filed under the request's; the
text names no firm, and a confidential need not even its title. Such a message is no contact
of the firm's: it counts toward none of its limits (``reminders.decency``) and is not shown on
its page."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from qifu.experts.models import Expert, Pairing
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"


def to_expert(pairing: Pairing, now: dt.datetime | None = None) -> OutboxMessage | None:
    """The message asking the expert of a confirmed ``pairing`` to answer it, once; None when
    the expert has no desk or nothing reaches them."""
    now = now or timezone.now()
    expert, need = pairing.expert, pairing.need
    if not expert.user_id:
        return None
    what = f"一条保密技术需求（编号{need.number}）" if need.confidential else f"一条企业技术需求“{need.title}”（编号{need.number}）"
    body = (f"【企服】{expert.name}老师：技术经纪人为您对接了{what}，请登录企服平台专家工作台查看，"
            f"并答复是否愿意对接。{FREE}")
    return decency.tell_once(f"expert:{pairing.pk}:confirmed", need.entity_id, "expert", expert.phone, expert.email,
                             body, f"专家对接通知：{expert.code}", now, addressee=OutboxMessage.Addressee.EXPERT)


# a first message looks back this far; and how many of the new needs it names by title
LOOK_BACK = dt.timedelta(days=7)
NAMED = 2


def new_needs(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): an expert with a desk who takes new needs and wishes to hear
    of them (``Expert.news``, a box on their desk) is told of the open needs registered since
    they were last told (the first time, in the last week) that they could offer to take
    (``actions.open_needs``: not confidential, not of a firm they declared a tie to, none they
    were proposed for, and only where the need's own matching ranks them high), in one text or
    email: how many, the best one or two by title and number, never a firm's name. Each
    expert's row is locked while it is done, so two workers at once tell them once. Returns how
    many messages."""
    from qifu.experts import actions

    now = now or timezone.now()
    sent = 0
    experts = (Expert.objects.filter(user__isnull=False, user__is_active=True, news=True)
               .exclude(availability=Expert.Availability.UNAVAILABLE).exclude(phone="", email="")
               .values_list("pk", flat=True))
    for pk in experts:
        with transaction.atomic():
            expert = Expert.objects.select_for_update().get(pk=pk)
            since = max(expert.needs_told_at or now - LOOK_BACK, now - LOOK_BACK)
            found = actions.open_needs(expert, limit=20, since=since)
            if found:
                named = "、".join(f"“{need.title}”（编号{need.number}）" for need, _, _ in found[:NAMED])
                body = (f"【企服】{expert.name}老师：有 {len(found)} 条新的企业技术需求与您的专长相近，如{named}。"
                        f"请登录企服平台专家工作台查看，愿意对接的可以自荐。{FREE}")
                reason = f"新需求通知：{expert.code}：{'、'.join(need.number for need, _, _ in found)}"
                key = f"expert-needs:{expert.pk}:{int(since.timestamp())}"
                sent += decency.tell_once(key, found[0][0].entity_id, "expert", expert.phone, expert.email, body,
                                          reason, now, addressee=OutboxMessage.Addressee.EXPERT) is not None
            Expert.objects.filter(pk=pk).update(needs_told_at=now)
    return sent
