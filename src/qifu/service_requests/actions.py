"""Named actions on enterprise requests: submit, move along the workflow, escalate, rate, call
back, merge, and the clock's tick. Each runs in one transaction and leaves a ``RequestEvent``
(who, when, what, why); an illegal move raises ``IllegalMove`` and changes nothing.

Time limits (``engine.requests.workdays``): the sign-off and answer deadlines count working
time only; while a request waits for the enterprise (``wait_for_enterprise``) its clock stops,
and the answer deadline moves by the working time it waited. ``tick`` (every ten minutes in
`qifu worker`) warns at 80% of a limit, marks overdue requests escalated and tells their department,
and closes a request answered seven days ago that the enterprise neither confirmed nor
reopened.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from qifu import text as text_rules
from qifu.accounts import ratelimits
from qifu.engine.requests import workdays
from qifu.engine.requests.workflow import IllegalMove, Move, State, next_state
from qifu.service_requests import notices, settings
from qifu.service_requests.models import Department, RequestEvent, Satisfaction, ServiceRequest

MAX_TEXT = 4000
AUTO_CLOSE_AFTER = dt.timedelta(days=7)
REOPEN_WITHIN = dt.timedelta(days=15)
DUPLICATE_WINDOW = dt.timedelta(days=30)
WARN_AT = 0.8
log = logging.getLogger(__name__)

__all__ = ["IllegalMove", "RequestError"]


class RequestError(ValueError):
    """Bad input for a request, said so that the person can fix it."""


class RateLimited(RequestError):
    """Too many requests from one source within the window."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, the enterprise, the system, an import or an API key."""

    label: str
    user: object | None = None

    @classmethod
    def staff(cls, user) -> Actor:
        return cls(user.get_full_name() or user.username, user)


ENTERPRISE = Actor("企业")
SYSTEM = Actor("系统")


def clean_text(value: str) -> str:
    try:
        value = text_rules.clean(value or "")
    except ValueError as e:
        raise RequestError(f"诉求内容{e}") from None
    if not value:
        raise RequestError("请填写诉求内容")
    if len(value) > MAX_TEXT:
        raise RequestError(f"诉求内容最多 {MAX_TEXT} 字，现有 {len(value)} 字")
    return value


def _event(req: ServiceRequest, move: str, actor: Actor, at: dt.datetime, before: str = "", note: str = "",
           from_department: str = "", to_department: str = "") -> RequestEvent:
    return RequestEvent.objects.create(request=req, at=at, move=move, from_status=before, to_status=req.status,
                                       user=actor.user, actor=actor.label[:100], note=note[:2000],
                                       from_department=from_department, to_department=to_department)


def do_submit_request(*, text: str, channel: str, actor: Actor, entity=None, town_id: str | None = None,
                      category: str | None = None, contact_name: str = "", contact_phone: str = "",
                      contact_email: str = "", address: str = "", lat: float | None = None, long: float | None = None,
                      api_key=None, rate_limit: tuple[str, int, int] | None = None, department=None,
                      now: dt.datetime | None = None) -> ServiceRequest:
    """A new request in the queue: its category (the person's choice, else the model's), the
    category's department and limits, the entity's township; its department is told.

    Everything is worked out before the one short write transaction (on SQLite a transaction
    holds the database's single writer: fifty devices posting at once queue for it).
    ``rate_limit`` (key, limit, window) is counted in that transaction; over it, nothing is
    stored and ``RateLimited`` is raised. ``department``: when the caller knows who must
    answer (a land-evaluation objection goes to the department that owns the data item), not
    the category's usual one."""
    from qifu.service_requests.routing import router

    now = now or timezone.now()
    body = clean_text(text)
    limits = settings.limits()
    confirmed = bool(category)
    score = None
    if category and category not in limits:
        raise RequestError(f"没有这个诉求类别：{category}")
    if not category:
        suggestion = router().route(body)
        category, score = suggestion.category, suggestion.score
    lim = limits[category]
    sign_due, answer_due = workdays.due(now, lim.sign_days), workdays.due(now, lim.answer_days)
    with transaction.atomic():
        req = ServiceRequest.objects.create(
            number=f"tmp-{now.timestamp()}-{id(body)}", entity=entity,
            town_id=(entity.town_id if entity is not None else town_id), channel=channel, category=category,
            category_confirmed=confirmed, route_score=score,
            department_id=department.pk if department is not None else lim.department_id, text=body,
            contact_name=contact_name[:50], contact_phone=contact_phone[:50], contact_email=contact_email[:200],
            address=address[:300], lat=lat, long=long, submitted_at=now, updated_at=now, api_key=api_key,
            sign_due=sign_due, answer_due=answer_due,
        )
        req.number = f"QF{timezone.localtime(now):%Y}{req.pk:07d}"
        req.save(update_fields=["number"])
        _event(req, "submit", actor, now, note=f"渠道：{req.get_channel_display()}；类别：{req.get_category_display()}"
               + ("" if confirmed else f"（自动分类，把握 {score:.0%}）"))
        if lim.notified or department is not None:
            notices.to_department(req, "new", now)
        # counted last: the counter's row is locked until the commit, and every post of one
        # key counts on the same row; over the limit, the whole transaction is undone
        if rate_limit and not ratelimits.take(*rate_limit, now):
            raise RateLimited(f"提交过于频繁：一小时内超过 {rate_limit[1]} 件，请稍后再试")
    return req


def _locked(req: ServiceRequest) -> ServiceRequest:
    return ServiceRequest.objects.select_for_update().get(pk=req.pk)


def _paused_seconds(req: ServiceRequest, now: dt.datetime) -> float:
    return workdays.working_seconds(req.waiting_since, now) if req.waiting_since else 0.0


def do_move(req: ServiceRequest, move: Move | str, actor: Actor, *, note: str = "", answer: str = "",
            department: Department | None = None, into: ServiceRequest | None = None,
            now: dt.datetime | None = None, tell: bool = True) -> ServiceRequest:
    """One step of the workflow (``engine.requests.workflow``). ``tell=False``: the enterprise is
    not sent the step's notice, for a caller that tells it in its own message (``do_settle``)."""
    now = now or timezone.now()
    move = Move(move)
    try:
        note = text_rules.clean(note or "", 2000)
        answer = text_rules.clean(answer or "", MAX_TEXT)
    except ValueError as e:
        raise RequestError(str(e)) from None
    with transaction.atomic():
        req = _locked(req)
        before = req.status
        after = next_state(before, move)
        from_dep = to_dep = ""
        if move == Move.SIGN:
            req.signed_at = now
        elif move == Move.WAIT:
            if not note:
                raise RequestError("请写明需要企业补充什么")
            req.waiting_since = now
        elif move == Move.RESUME:
            _resume_clock(req, now)
        elif move == Move.ANSWER:
            if not answer:
                raise RequestError("请填写答复内容")
            _resume_clock(req, now)
            req.answer, req.answered_at = answer, now
        elif move in (Move.CONFIRM, Move.AUTO_CLOSE):
            req.closed_at = now
        elif move == Move.REOPEN:
            since = req.closed_at or req.answered_at
            if since and now - since > REOPEN_WITHIN:
                raise RequestError(f"办结已超过 {REOPEN_WITHIN.days} 天，不能再要求重新办理；如有新问题请重新提交诉求")
            req.reopen_count += 1
            req.closed_at = req.rated_at = None
            req.satisfaction, req.rating_comment = "", ""
            req.answer_due = workdays.due(now, settings.limits()[req.category].answer_days)
            req.warned, req.overdue = "", False
        elif move == Move.TRANSFER:
            if department is None or department.pk == req.department_id:
                raise RequestError("转办需要选择另一个承办部门")
            if not note:
                raise RequestError("转办需要说明理由")
            from_dep, to_dep = req.department.name if req.department_id else "", department.name
            req.department = department
            req.transfer_count += 1
            req.signed_at = None
            req.sign_due = workdays.due(now, settings.limits()[req.category].sign_days)
            req.warned = req.warned.replace("sign", "")
        elif move == Move.MERGE:
            if into is None or into.pk == req.pk:
                raise RequestError("请选择要合并到的诉求")
            req.duplicate_of, req.closed_at = into, now
            note = note or f"与诉求 {into.number} 重复，合并办理"
        req.status = after
        req.updated_at = now
        req.save()
        _event(req, move, actor, now, before, note or answer, from_dep, to_dep)
        if move == Move.SIGN and tell:
            notices.to_enterprise(req, "signed", now)
        elif move == Move.ANSWER and tell:
            notices.to_enterprise(req, "answered", now)
        elif move == Move.TRANSFER:
            notices.to_department(req, "new", now)
    return req


def _resume_clock(req: ServiceRequest, now: dt.datetime) -> None:
    """Give back the working time the request waited for the enterprise."""
    if req.waiting_since:
        paused = _paused_seconds(req, now)
        if req.answer_due:
            req.answer_due = workdays.add_working(req.answer_due, paused)
        req.waiting_since = None


def do_escalate(req: ServiceRequest, actor: Actor, note: str, now: dt.datetime | None = None) -> ServiceRequest:
    """A leader's 督办: the request is flagged and its department told."""
    now = now or timezone.now()
    if req.status == State.CLOSED:
        raise RequestError("已办结的诉求不需要督办")
    with transaction.atomic():
        req = _locked(req)
        req.escalated, req.updated_at = True, now
        req.save(update_fields=["escalated", "updated_at"])
        _event(req, "escalate", actor, now, req.status, note or "领导督办")
        notices.to_department(req, "escalated", now)
    return req


def do_rate(req: ServiceRequest, satisfaction: str, comment: str = "", now: dt.datetime | None = None) -> ServiceRequest:
    """The enterprise rates an answered or closed request; rating an answered one confirms it
    closed. 不满意 goes to the service centre for a call-back (回访)."""
    now = now or timezone.now()
    if satisfaction not in Satisfaction.values:
        raise RequestError("请选择满意、基本满意或不满意")
    try:
        comment = text_rules.clean(comment or "", 500)
    except ValueError as e:
        raise RequestError(f"评价意见{e}") from None
    with transaction.atomic():
        req = _locked(req)
        if req.status not in (State.ANSWERED, State.CLOSED):
            raise RequestError("诉求答复以后才能评价")
        if req.rated_at:
            raise RequestError("这条诉求已经评价过了")
        before = req.status
        if req.status == State.ANSWERED:
            req.status, req.closed_at = State.CLOSED, now
        req.satisfaction, req.rating_comment, req.rated_at = satisfaction, comment, now
        req.callback_needed = satisfaction == Satisfaction.DISSATISFIED
        req.updated_at = now
        req.save()
        _event(req, "rate", ENTERPRISE, now, before, f"{Satisfaction(satisfaction).label}{'：' + comment if comment else ''}")
    return req


def do_callback(req: ServiceRequest, actor: Actor, note: str, now: dt.datetime | None = None) -> ServiceRequest:
    """The service centre called the dissatisfied enterprise back (回访) and says what came of it."""
    now = now or timezone.now()
    try:
        note = text_rules.clean(note or "", 500)
    except ValueError as e:
        raise RequestError(f"回访记录{e}") from None
    if not note:
        raise RequestError("请填写回访结果")
    with transaction.atomic():
        req = _locked(req)
        if not req.callback_needed or req.callback_done:
            raise RequestError("这条诉求不需要回访，或已经回访过")
        req.callback_done, req.callback_note, req.updated_at = True, note, now
        req.save(update_fields=["callback_done", "callback_note", "updated_at"])
        _event(req, "edit", actor, now, req.status, f"回访：{note}")
    return req


def do_settle(req: ServiceRequest, actor: Actor, answer: str, now: dt.datetime | None = None) -> bool:
    """Another module's decision answers the request (an objection's listing annulled): signed
    if nobody had, then answered with ``answer``; the enterprise rates it as any other, but is
    sent neither step's notice, for the caller tells it once in its own message. A request
    already answered or closed gets ``answer`` on its record only. Whether it was answered."""
    now = now or timezone.now()
    with transaction.atomic():
        req = _locked(req)
        if req.status in (State.ANSWERED, State.CLOSED):
            _event(req, "edit", actor, now, req.status, answer)
            return False
        if req.status == State.SUBMITTED:
            req = do_move(req, Move.SIGN, actor, now=now, tell=False)
        do_move(req, Move.ANSWER, actor, answer=answer, now=now, tell=False)
    return True


def do_set_category(req: ServiceRequest, category: str, actor: Actor, now: dt.datetime | None = None) -> ServiceRequest:
    """Staff confirm or change the category; the department follows it while nobody has signed."""
    now = now or timezone.now()
    limits = settings.limits()
    if category not in limits:
        raise RequestError(f"没有这个诉求类别：{category}")
    with transaction.atomic():
        req = _locked(req)
        before_cat = req.get_category_display()
        req.category, req.category_confirmed, req.updated_at = category, True, now
        moved = req.status == State.SUBMITTED and req.department_id != limits[category].department_id
        if moved:
            req.department_id = limits[category].department_id
        req.save()
        _event(req, "edit", actor, now, req.status, f"类别：{before_cat} → {req.get_category_display()}"
               + (f"；承办部门随类别改为 {limits[category].department}" if moved else ""))
    return req


def find_duplicates(entity, text: str, now: dt.datetime | None = None, exclude: int | None = None,
                    threshold: float = 0.5) -> list[tuple[ServiceRequest, float]]:
    """The entity's open requests of the last 30 days that resemble ``text``, best first."""
    from qifu.engine.requests.similar import similarity

    if entity is None:
        return []
    now = now or timezone.now()
    candidates = (ServiceRequest.objects.filter(entity=entity, submitted_at__gte=now - DUPLICATE_WINDOW)
                  .exclude(status=State.CLOSED).exclude(pk=exclude).order_by("-submitted_at")[:50])
    scored = [(c, similarity(text, c.text)) for c in candidates]
    return sorted([(c, s) for c, s in scored if s >= threshold], key=lambda cs: -cs[1])


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    """Warnings at 80% of a limit, overdue marks (and the department told), auto-closing."""
    now = now or timezone.now()
    counts = Counter({"warned": 0, "overdue": 0, "closed": 0})
    open_ = ServiceRequest.objects.exclude(status=State.CLOSED).select_related("department", "entity")
    for req in open_.filter(status=State.SUBMITTED, sign_due__isnull=False):
        counts[_check_clock(req, "sign", req.sign_due, now)] += 1
    for req in open_.filter(status__in=[State.SIGNED, State.IN_PROGRESS], answer_due__isnull=False):
        counts[_check_clock(req, "answer", req.answer_due, now)] += 1
    for req in ServiceRequest.objects.filter(status=State.ANSWERED, answered_at__lte=now - AUTO_CLOSE_AFTER):
        try:
            do_move(req, Move.AUTO_CLOSE, SYSTEM, note="答复后七天企业未确认也未要求重办，自动办结", now=now)
            counts["closed"] += 1
        except IllegalMove:
            pass
    counts.pop("", None)
    return dict(counts)


def _check_clock(req: ServiceRequest, which: str, due: dt.datetime, now: dt.datetime) -> str:
    """"warned", "overdue" or "" for one clock of one request."""
    if due <= now:
        if req.overdue:
            return ""
        with transaction.atomic():  # overdue is escalated (督办) at once, as 12345 practice does
            ServiceRequest.objects.filter(pk=req.pk).update(overdue=True, escalated=True, updated_at=now)
            req.overdue = req.escalated = True
            _event(req, "overdue", SYSTEM, now, req.status, f"{'签收' if which == 'sign' else '答复'}已超过时限，自动督办")
            notices.to_department(req, "overdue", now)
        return "overdue"
    limit = workdays.working_seconds(req.submitted_at, due)
    used = workdays.working_seconds(req.submitted_at, now)
    if which in req.warned or limit <= 0 or used < WARN_AT * limit:
        return ""
    with transaction.atomic():
        req.warned = (req.warned + " " + which).strip()
        ServiceRequest.objects.filter(pk=req.pk).update(warned=req.warned)
        _event(req, "warn", SYSTEM, now, req.status, f"{'签收' if which == 'sign' else '答复'}时限已过 80%")
        notices.to_department(req, "due_soon", now)
    return "warned"
