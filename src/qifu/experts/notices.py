"""Messages to expert partners, through the outbox and its sender (quiet hours, exactly once):
when the broker confirms an expert who has a desk (`qifu expert-account`) for a need, the
expert is asked, by text or email, to sign in and answer. An expert reached by neither hears
from the broker. The outbox belongs to an entity, so the message is filed under the need's
firm, as a department's notices are filed under the request's; the text names no firm, and a
confidential need not even its title."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from qifu.experts.models import Pairing
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
                             body, f"专家对接通知：{expert.code}", now)
