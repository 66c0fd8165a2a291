"""What changes expert partners' data: experts imported from staff's sheet, a firm's technical
need (from staff, the portal or a request), the experts proposed for it by Chinese retrieval
with the words that matched, staff's confirmation, visits, and cooperation projects with their
milestones. A check that fails raises ``ExpertActionError`` and changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from qifu import text as texts
from qifu.engine.assistant.textindex import TextIndex
from qifu.experts import notices
from qifu.experts.models import Achievement, Conflict, Cooperation, Expert, Need, Pairing, Visit
from qifu.registry.models import Entity
from qifu.service_requests.models import Satisfaction

PROPOSALS = 5  # experts proposed for each need


class ExpertActionError(ValueError):
    """Something a person can fix, said in Chinese."""


# --- experts ----------------------------------------------------------------------------------


def import_experts(rows: list[dict]) -> tuple[int, int, int]:
    """One row per expert, matched by code. Returns (new, changed, unchanged)."""
    now = timezone.now()
    existing = {e.code: e for e in Expert.objects.filter(code__in=[r["expert_code"] for r in rows])}
    new, changed, same = [], [], 0
    for r in rows:
        fields = {"name": r["name"], "institution": r["institution"], "title": r.get("title") or "",
                  "fields": r["fields"], "skills": r.get("skills") or "", "projects": r.get("projects") or "",
                  "availability": r.get("availability") or "available", "phone": r.get("phone") or "",
                  "email": r.get("email") or "", "consent": bool(r.get("consent"))}
        e = existing.get(r["expert_code"])
        if e is None:
            new.append(Expert(code=r["expert_code"], updated_at=now, **fields))
        elif any(getattr(e, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(e, k, v)
            e.updated_at = now
            changed.append(e)
        else:
            same += 1
    Expert.objects.bulk_create(new, batch_size=500)
    if changed:
        Expert.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=500)
    return len(new), len(changed), same


def _document(e: Expert) -> str:
    return " ".join([e.fields, e.fields, e.skills, e.skills, e.projects, e.title, e.institution])


@lru_cache(maxsize=1)
def _index(version: tuple) -> tuple[list[int], TextIndex]:
    experts = list(Expert.objects.exclude(availability=Expert.Availability.UNAVAILABLE).order_by("pk"))
    return [e.pk for e in experts], TextIndex([_document(e) for e in experts])


def _version() -> tuple:
    return tuple(Expert.objects.aggregate(n=Count("id"), last=Max("updated_at")).values())


def index() -> tuple[list[int], TextIndex]:
    """The retrieval index over the experts who take work, rebuilt when an expert changes."""
    return _index(_version())


def rank(query: str, limit: int = 10) -> list[tuple[int, float, tuple[str, ...]]]:
    """(expert id, score, matched words) for a need's text, best first."""
    return list(_ranked(_version(), query, limit))


# the same need's text is searched once per index: the morning message and every desk ask
# whether each of the newest needs would rank an expert high (``_near``)
@lru_cache(maxsize=1024)
def _ranked(version: tuple, query: str, limit: int) -> tuple[tuple[int, float, tuple[str, ...]], ...]:
    ids, idx = _index(version)
    return tuple((ids[h.index], h.score, h.words) for h in idx.search(query, limit))


# --- needs ------------------------------------------------------------------------------------


def do_submit_need(entity, title: str, description: str, source: str, *, budget=None, urgent: bool = False,
                   confidential: bool = False, by=None, request=None, now: dt.datetime | None = None) -> Need:
    """A technical need, with the experts the retrieval proposes for it."""
    now = now or timezone.now()
    try:
        title, description = texts.clean(title, 100), texts.clean(description, 4000)
    except ValueError as e:
        raise ExpertActionError(f"需求{e}") from None
    if len(title) < 4 or len(description) < 10:
        raise ExpertActionError("请写明需求名称（至少4个字）和需求描述（至少10个字）")
    if budget not in (None, ""):
        try:
            budget = Decimal(str(budget)).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise ExpertActionError("预算应为数字（万元）") from None
        if not 0 <= budget < Decimal("1e8"):
            raise ExpertActionError("预算应在 0 到 1 亿万元之间")
    else:
        budget = None
    with transaction.atomic():
        need = Need.objects.create(number=f"tmp-{uuid.uuid4().hex[:16]}", entity=entity, town_id=entity.town_id, title=title,
                                   text=description, budget=budget, urgent=urgent, confidential=confidential,
                                   source=source, request=request, created_at=now, created_by=by)
        need.number = f"XQ{timezone.localtime(now):%Y}-{need.pk:05d}"  # from the key: unique without a race
        need.save(update_fields=["number"])
        propose(need)
    return need


def do_need_from_request(req, by=None) -> Need:
    """A request of the technology category taken into the needs library."""
    if req.entity_id is None:
        raise ExpertActionError("这件诉求没有关联企业，不能转为技术需求")
    if Need.objects.filter(request=req).exists():
        raise ExpertActionError("这件诉求已经转为技术需求")
    return do_submit_need(req.entity, req.text[:40], req.text, Need.Source.REQUEST, by=by, request=req)


def propose(need: Need, limit: int = PROPOSALS) -> list[Pairing]:
    """Propose the best-matching experts not yet proposed for the need, but none who declared a
    tie to its firm."""
    known = set(need.pairings.values_list("expert_id", flat=True))
    start = len(known)
    known |= set(Conflict.objects.standing().filter(entity_id=need.entity_id)
                 .values_list("expert_id", flat=True))
    hits = [h for h in rank(f"{need.title} {need.text}", limit + len(known)) if h[0] not in known][:limit]
    return Pairing.objects.bulk_create(Pairing(need=need, expert_id=e, rank=start + k + 1, score=round(s, 4),
                                               words=list(w)) for k, (e, s, w) in enumerate(hits))


# the newest open needs an expert's desk looks through for needs to offer to take; how high the
# need's matching must rank the expert (over the experts who take work) to list it; and how
# close to the best expert's their score must be (in the demo's library a food expert sharing
# only 分析 with a motor-noise need scored 0.1 of the best; one for a fruit-keeping need, 0.41)
NEEDS_FOR_VOLUNTEERS = 300
VOLUNTEER_RANK = 3 * PROPOSALS
VOLUNTEER_SHARE = 0.25


def open_needs(expert: Expert, limit: int = 20, since: dt.datetime | None = None,
               ) -> list[tuple[Need, float, tuple[str, ...]]]:
    """(need, score, words in common) of the open needs ``expert`` may offer to take (专家自荐),
    best matching their fields, skills and projects first, and only those whose own matching
    ranks them high (``_near``): not confidential (those go only to the experts staff choose),
    not of a firm they declared a tie to, and none they were proposed, confirmed or set aside
    for already. With ``since``, only the needs registered after it."""
    taken = Pairing.objects.filter(expert=expert).values("need_id")
    tied = Conflict.objects.standing().filter(expert=expert).values("entity_id")
    needs = Need.objects.filter(status=Need.Status.OPEN, confidential=False)
    if since is not None:
        needs = needs.filter(created_at__gt=since)
    needs = list(needs.exclude(pk__in=taken).exclude(entity_id__in=tied).select_related("town")
                 .order_by("-created_at")[:NEEDS_FOR_VOLUNTEERS])
    if not needs:
        return []
    found = TextIndex([f"{n.title} {n.title} {n.text}" for n in needs]).search(_document(expert), limit)
    return [(needs[h.index], h.score, h.words) for h in found if _near(needs[h.index], expert)]


def _near(need: Need, expert: Expert) -> bool:
    """Whether the need's own matching would put ``expert`` on a longer list: among its first
    ``VOLUNTEER_RANK`` and scoring ``VOLUNTEER_SHARE`` of the best. A word in common is not
    enough (分析 is in most needs)."""
    hits = rank(f"{need.title} {need.text}", VOLUNTEER_RANK)
    return any(e == expert.pk and s >= VOLUNTEER_SHARE * hits[0][1] for e, s, _ in hits)


# one answer for a need that is not there, not open or confidential: the desk does not say which
NOT_OPEN_TO_OFFERS = "这条需求不存在、已在对接中或不公开，不能自荐"


def do_volunteer(need: Need, expert: Expert, note: str, now: dt.datetime | None = None) -> Pairing:
    """The expert offers to take an open need from their desk: it goes to the broker as a
    proposal marked as the expert's own offer, with their note; the broker confirms it or sets
    it aside as any other. Not for a confidential need, a firm they declared a tie to, or while
    they take no new needs."""
    note = texts.written(note, "自荐说明", ExpertActionError,
                         "请简单说明您能帮企业做什么（至少4个字），技术经纪人据此决定是否对接")[:300]
    if expert.availability == Expert.Availability.UNAVAILABLE:
        raise ExpertActionError("您目前设为“暂不对接”：先改为可对接，再自荐")
    with transaction.atomic():
        need = Need.objects.select_for_update().get(pk=need.pk)
        if need.status != Need.Status.OPEN or need.confidential:
            raise ExpertActionError(NOT_OPEN_TO_OFFERS)
        if Conflict.objects.standing().filter(expert=expert, entity_id=need.entity_id).exists():
            raise ExpertActionError("您已申报与该企业的利益关系，应当回避")
        pairing = Pairing.objects.filter(need=need, expert=expert).first()
        if pairing is not None and (pairing.status != Pairing.Status.PROPOSED or pairing.volunteered_at):
            raise ExpertActionError("您已自荐过这条需求，或技术经纪人已另作安排")
        if pairing is None:
            hit = next((h for h in rank(f"{need.title} {need.text}", 100) if h[0] == expert.pk), None)
            pairing = Pairing(need=need, expert=expert, rank=need.pairings.count() + 1,
                              score=round(hit[1], 4) if hit else 0.0, words=list(hit[2]) if hit else [])
        pairing.volunteered_at, pairing.volunteer_note = now or timezone.now(), note
        pairing.save()
    return pairing


def do_decide(pairing: Pairing, confirm: bool, by=None) -> Pairing:
    """Staff (the technology broker) confirm a proposed expert for the need, or set it aside."""
    with transaction.atomic():
        pairing = Pairing.objects.select_for_update().select_related("need").get(pk=pairing.pk)
        if pairing.need.status == Need.Status.CLOSED:
            raise ExpertActionError("需求已办结")
        tie = Conflict.objects.standing().filter(expert_id=pairing.expert_id,
                                                  entity_id=pairing.need.entity_id).first()
        if confirm and tie is not None:
            raise ExpertActionError(f"该专家已申报与本企业存在利益关系（{tie.reason}），应当回避")
        pairing.status = Pairing.Status.CONFIRMED if confirm else Pairing.Status.DECLINED
        pairing.decided_by, pairing.decided_at = by, timezone.now()
        pairing.save(update_fields=["status", "decided_by", "decided_at"])
        need = pairing.need
        if confirm and need.status == Need.Status.OPEN:
            need.status = Need.Status.PAIRED
            need.save(update_fields=["status"])
        if confirm:  # an expert with a desk is asked to answer there
            notices.to_expert(pairing)
    return pairing


def do_log_visit(entity, visited_on: dt.date, notes: str, *, need: Need | None = None, expert: Expert | None = None,
                 by=None) -> Visit:
    notes = texts.written(notes, "走访情况", ExpertActionError, "请写明走访情况（至少4个字）")
    if visited_on > timezone.localdate():
        raise ExpertActionError("走访日期不能晚于今天")
    if need is not None and need.entity_id != entity.pk:
        raise ExpertActionError("这条需求不是这家企业的")
    return Visit.objects.create(entity=entity, town_id=entity.town_id, need=need, expert=expert, visited_on=visited_on,
                                notes=notes[:4000], by=by, created_at=timezone.now())


def do_agree(need: Need, expert: Expert, title: str, agreed_on: dt.date, amount="0",
             milestones: list[tuple[str, dt.date]] = ()) -> Cooperation:
    """A cooperation project agreed between the firm and a confirmed expert."""
    title = texts.written(title, "合作项目名称", ExpertActionError, "请写明合作项目名称（至少4个字）")
    if not need.pairings.filter(expert=expert, status=Pairing.Status.CONFIRMED).exists():
        raise ExpertActionError("请先确认对接这位专家")
    if hasattr(need, "cooperation"):
        raise ExpertActionError("这条需求已有合作项目")
    try:
        amount = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ExpertActionError("合同金额应为数字（万元）") from None
    if amount < 0:
        raise ExpertActionError("合同金额不能为负")
    with transaction.atomic():
        coop = Cooperation.objects.create(
            need=need, expert=expert, entity_id=need.entity_id, town_id=need.town_id, title=title[:200],
            agreed_on=agreed_on, amount=amount,
            milestones=[{"name": n, "due": d.isoformat(), "done_on": None} for n, d in milestones])
        need.status = Need.Status.COOPERATING
        need.save(update_fields=["status"])
    return coop


def do_reach_milestone(coop: Cooperation, index: int, done_on: dt.date) -> Cooperation:
    if not 0 <= index < len(coop.milestones):
        raise ExpertActionError("没有这个节点")
    if done_on > timezone.localdate():
        raise ExpertActionError("完成日期不能晚于今天")
    coop.milestones[index]["done_on"] = done_on.isoformat()
    coop.save(update_fields=["milestones"])
    return coop


def do_rate(coop: Cooperation, rating: str, comment: str = "", now: dt.datetime | None = None) -> Cooperation:
    """The firm rates a cooperation project that has ended (满意 / 基本满意 / 不满意), once; a
    rating of 不满意 needs its reason, which the broker reads on the need's page."""
    return _grade(coop, ("rating", "rating_comment", "rated_at"), rating, comment, now, "这个合作项目已经评价过了")


def _grade(coop: Cooperation, fields: tuple[str, str, str], rating: str, comment: str, now: dt.datetime | None,
           already: str, expert: Expert | None = None) -> Cooperation:
    """One side's grade of an ended cooperation into ``fields`` (grade, comment, time), once:
    the firm's, or ``expert``'s, who must be the project's."""
    comment = (comment or "").strip()
    if rating not in Satisfaction.values:
        raise ExpertActionError("请选择满意、基本满意或不满意")
    if rating == Satisfaction.DISSATISFIED and len(comment) < texts.AT_LEAST:
        raise ExpertActionError("不满意的，请写明原因（至少 4 个字）")
    with transaction.atomic():
        coop = Cooperation.objects.select_for_update().get(pk=coop.pk)
        if expert is not None and coop.expert_id != expert.pk:
            raise ExpertActionError("这个合作项目不是您的")
        if coop.status == Cooperation.Status.ONGOING:
            raise ExpertActionError("合作项目结束后才能评价")
        if getattr(coop, fields[0]):
            raise ExpertActionError(already)
        for name, value in zip(fields, (rating, comment[:500], now or timezone.now()), strict=True):
            setattr(coop, name, value)
        coop.save(update_fields=list(fields))
    return coop


def do_finish(coop: Cooperation, outcome: str, completed: bool = True) -> Cooperation:
    outcome = texts.written(outcome, "合作成果", ExpertActionError, "请写明合作成果或终止原因（至少4个字）")
    with transaction.atomic():
        coop.status = Cooperation.Status.COMPLETED if completed else Cooperation.Status.STOPPED
        coop.outcome = outcome[:4000]
        coop.save(update_fields=["status", "outcome"])
        Need.objects.filter(pk=coop.need_id).update(status=Need.Status.CLOSED)
    return coop


# --- the expert's own desk ----------------------------------------------------------------------


def do_open_account(expert: Expert, username: str, by=None) -> tuple[object, str]:
    """A sign-in for ``expert`` (their desk of the needs they were paired with), with a random
    first password returned to be handed over (``by``: the administrator who opened it; None
    from the command line). An account of staff, or of another expert, is refused: an expert
    sees no staff page."""
    from django.contrib.auth import get_user_model

    from qifu.accounts.actions import StaffError, check_username, issue_password

    try:
        username = check_username(username)
    except StaffError as e:
        raise ExpertActionError(str(e)) from None
    if expert.user_id:
        raise ExpertActionError(f"专家 {expert.code} 已有登录账号 {expert.user.username}")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ExpertActionError(f"用户名 {username} 已被占用")
    with transaction.atomic():
        user = User.objects.create_user(username)
        password = issue_password(user, by)  # to be changed at the first sign-in
        expert.user = user
        expert.save(update_fields=["user"])
    return user, password


def do_declare_conflict(expert: Expert, firm: str, reason: str, by=None, now: dt.datetime | None = None) -> Conflict:
    """The expert's tie to a firm (its credit code, or its full registered name), declared by the
    expert on their desk or by staff for them. From now on they are not proposed for the firm's
    needs; where they were proposed or confirmed for an open one, the pairing is set aside
    (proposed: 不合适; confirmed: answered 婉拒, 利益回避) so the broker proposes another."""
    now = now or timezone.now()
    firm = (firm or "").strip()
    try:
        reason = texts.clean(reason, 200)
    except ValueError as e:
        raise ExpertActionError(f"关系说明{e}") from None
    if len(reason) < 2:
        raise ExpertActionError("请写明与企业的关系，如：曾任该企业技术顾问")
    entity = Entity.objects.filter(uscc=firm.upper()).first() if len(firm) == 18 else None
    if entity is None and firm:
        named = list(Entity.objects.filter(name=firm)[:2])
        if len(named) > 1:
            raise ExpertActionError(f"有多家企业名为“{firm}”：请填统一社会信用代码")
        entity = named[0] if named else None
    if entity is None:
        raise ExpertActionError(f"没有找到企业“{firm[:60]}”：请填统一社会信用代码或营业执照上的全称")
    with transaction.atomic():
        if Conflict.objects.standing().filter(expert=expert, entity=entity).exists():
            raise ExpertActionError(f"已申报过与“{entity.name}”的利益关系")
        tie = Conflict.objects.create(expert=expert, entity=entity, reason=reason, declared_at=now, declared_by=by)
        # not where a cooperation with them is agreed already: that contract is staff's to handle
        open_needs = (Pairing.objects.filter(expert=expert, need__entity=entity).exclude(need__status=Need.Status.CLOSED)
                      .exclude(need__cooperation__expert=expert))
        open_needs.filter(status=Pairing.Status.PROPOSED).update(status=Pairing.Status.DECLINED, decided_at=now)
        open_needs.filter(status=Pairing.Status.CONFIRMED).exclude(answer=Pairing.Answer.DECLINED).update(
            answer=Pairing.Answer.DECLINED, answer_note=f"利益回避：{reason}"[:500], answered_at=now)
    return tie


def do_withdraw_conflict(tie: Conflict, by=None, now: dt.datetime | None = None) -> Conflict:
    """A declared tie withdrawn (declared by mistake, or it has ended): kept as a record; the
    expert may be proposed for the firm's needs again. Pairings set aside stay as they are. A
    tie the expert declared on their desk is theirs to withdraw; one staff recorded, staff's or
    the expert's."""
    with transaction.atomic():
        tie = Conflict.objects.select_for_update().select_related("expert").get(pk=tie.pk)
        if tie.withdrawn_at is not None:
            raise ExpertActionError("这项回避已经撤回")
        if tie.by_expert and (by is None or by.pk != tie.expert.user_id):
            raise ExpertActionError("这项回避是专家本人申报的，由专家在工作台撤回")
        tie.withdrawn_at, tie.withdrawn_by = now or timezone.now(), by
        tie.save(update_fields=["withdrawn_at", "withdrawn_by"])
    return tie


def do_set_news(expert: Expert, on: bool) -> Expert:
    """Whether the expert is told each morning of new needs in their line (``notices.new_needs``).
    Matching does not read it, so the retrieval index stays as it is."""
    expert.news = bool(on)
    expert.save(update_fields=["news"])
    return expert


def do_set_availability(expert: Expert, availability: str, now: dt.datetime | None = None) -> Expert:
    if availability not in Expert.Availability.values:
        raise ExpertActionError("请选择可对接、时间有限或暂不对接")
    expert.availability, expert.updated_at = availability, now or timezone.now()
    expert.save(update_fields=["availability", "updated_at"])
    return expert


def do_answer(pairing: Pairing, expert: Expert, accept: bool, note: str = "", now: dt.datetime | None = None) -> Pairing:
    """The expert answers a pairing staff confirmed for them: willing, or declining with the
    reason the broker reads on the need's page. Once; a declined pairing leaves the need to the
    broker, who may propose and confirm another expert."""
    note = (note or "").strip()
    if not accept and len(note) < texts.AT_LEAST:
        raise ExpertActionError("婉拒的，请写明原因（至少 4 个字），技术经纪人据此另行推荐")
    with transaction.atomic():
        pairing = Pairing.objects.select_for_update().get(pk=pairing.pk)
        if pairing.expert_id != expert.pk or pairing.status != Pairing.Status.CONFIRMED:
            raise ExpertActionError("这条对接不是您的，或尚未确认")
        if pairing.answer:
            raise ExpertActionError("这条对接已经答复过了")
        pairing.answer = Pairing.Answer.ACCEPTED if accept else Pairing.Answer.DECLINED
        pairing.answer_note, pairing.answered_at = note[:500], now or timezone.now()
        pairing.save(update_fields=["answer", "answer_note", "answered_at"])
    return pairing


def do_expert_feedback(coop: Cooperation, expert: Expert, rating: str, comment: str = "",
                       now: dt.datetime | None = None) -> Cooperation:
    """The expert's side of a cooperation that has ended (how the firm worked with them), once,
    as the firm rates the expert: 不满意 needs its reason."""
    return _grade(coop, ("expert_rating", "expert_comment", "expert_rated_at"), rating, comment, now,
                  "这个合作项目您已经评价过了", expert=expert)


# --- the results library (科技成果) ----------------------------------------------------------------

ACHIEVEMENTS_PER_NEED = 3
MIN_WORDS = 2  # an achievement shown beside a need, or a need beside it, shares at least two telling words
# words every results text and every need has: sharing them says nothing about a fit
GENERIC_WORDS = frozenset("""技术 产品 工艺 大学 某大学 学院 研究 研究院 研究所 成果 科技 项目 关键 系统 开发 合作 方向 基于
应用 设计 改进 问题 了解 转化 费用 持有 单位 企业 公司 专家 方案 优化 提高 提升 解决 需要 希望 方面 能否 我们 生产 加工
实验室 完成 验证 方式 可以 直接 试用 产业化 小试 中试 转让 许可 入股 作价""".split())


def _telling(words) -> tuple[str, ...]:
    return tuple(w for w in words if w not in GENERIC_WORDS)


def import_achievements(rows: list[dict]) -> tuple[int, int, int]:
    """One row per achievement, matched by code; its expert by the library's code (checked by
    the import before). Returns (new, changed, unchanged)."""
    now = timezone.now()
    experts = dict(Expert.objects.filter(code__in={r["expert_code"] for r in rows if r.get("expert_code")})
                   .values_list("code", "pk"))
    existing = {a.code: a for a in Achievement.objects.filter(code__in=[r["achievement_code"] for r in rows])}
    new = changed = same = 0
    for r in rows:
        price = r.get("price")
        fields = {"title": r["title"], "summary": r["summary"], "fields": r["fields"], "holder": r["holder"],
                  "expert_id": experts.get(r.get("expert_code")), "maturity": r["maturity"], "transfer": r["transfer"],
                  "price": None if price in (None, "") else Decimal(str(price)).quantize(Decimal("0.01")),
                  "public": True if r.get("public") is None else bool(r["public"])}
        a = existing.get(r["achievement_code"])
        if a is None:
            Achievement.objects.create(code=r["achievement_code"], updated_at=now, **fields)
            new += 1
        elif any(getattr(a, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(a, k, v)
            a.updated_at = now
            a.save()
            changed += 1
        else:
            same += 1
    return new, changed, same


def _achievement_document(a: Achievement) -> str:
    return " ".join([a.title, a.title, a.fields, a.fields, a.summary])


@lru_cache(maxsize=1)
def _achievement_index(version: tuple) -> tuple[list[int], TextIndex]:
    found = list(Achievement.objects.order_by("pk"))
    return [a.pk for a in found], TextIndex([_achievement_document(a) for a in found])


def search_achievements(query: str, limit: int = 20, public_only: bool = False) -> list[tuple[Achievement, tuple]]:
    """Achievements for a text in Chinese (a need, a firm's search), best first, each with the
    words it matched."""
    version = tuple(Achievement.objects.aggregate(n=Count("id"), last=Max("updated_at")).values())
    ids, index = _achievement_index(version)
    hits = index.search(query, limit * 3 if public_only else limit)
    found = Achievement.objects.select_related("expert").in_bulk([ids[h.index] for h in hits])
    out = [(found[ids[h.index]], h.words) for h in hits if ids[h.index] in found]
    return [(a, w) for a, w in out if a.public or not public_only][:limit]


def achievements_for(need: Need, limit: int = ACHIEVEMENTS_PER_NEED) -> list[tuple[Achievement, tuple]]:
    """The achievements that could answer a need, for the broker beside its experts."""
    found = [(a, _telling(w)) for a, w in search_achievements(f"{need.title} {need.text}", limit * 3)]
    return [(a, w) for a, w in found if len(w) >= MIN_WORDS and a.pk != need.achievement_id][:limit]


def needs_for(achievement: Achievement, needs, limit: int = 10) -> list[tuple[Need, tuple]]:
    """The reverse match: of ``needs`` (already narrowed to what the reader may see), the open
    or paired ones (the newest 2,000) whose text this achievement could answer, best first."""
    pool = list(needs.filter(status__in=[Need.Status.OPEN, Need.Status.PAIRED]).select_related("entity")
                .order_by("-created_at")[:2000])
    if not pool:
        return []
    index = TextIndex([f"{n.title} {n.title} {n.text}" for n in pool])
    hits = index.search(f"{achievement.title} {achievement.fields} {achievement.summary}", limit * 3)
    found = [(pool[h.index], _telling(h.words)) for h in hits]
    return [(n, w) for n, w in found if len(w) >= MIN_WORDS][:limit]


def do_ask_about(entity, achievement: Achievement, note: str, by=None, now: dt.datetime | None = None) -> Need:
    """A firm asks to know more about an achievement (我想了解): a need of the firm, linked to
    the achievement, with the achievement's expert proposed first (unless they declared a tie to
    the firm) and the matching's experts after; the broker takes it from there. Once per firm
    and achievement while the need is not closed."""
    if not achievement.public and by is None:
        raise ExpertActionError("这项成果不公开")
    note = texts.written(note, "需求说明", ExpertActionError, "请写几句贵企业想用这项成果做什么（至少4个字）")
    if Need.objects.filter(entity=entity, achievement=achievement).exclude(status=Need.Status.CLOSED).exists():
        raise ExpertActionError("贵企业已提出了解这项成果，正在对接中")
    text = f"{note}（了解科技成果 {achievement.code}“{achievement.title}”，持有单位 {achievement.holder}）"
    with transaction.atomic():
        need = do_submit_need(entity, f"了解科技成果：{achievement.title}"[:100], text,
                              Need.Source.STAFF if by else Need.Source.PORTAL, by=by, now=now)
        need.achievement = achievement
        need.save(update_fields=["achievement"])
        expert = achievement.expert
        tied = expert is not None and Conflict.objects.standing().filter(entity_id=entity.pk, expert=expert).exists()
        if expert is not None and not tied and expert.availability != Expert.Availability.UNAVAILABLE:
            first = need.pairings.filter(expert=expert).first()
            if first is None:
                Pairing.objects.create(need=need, expert=expert, rank=0, score=0.0, words=["成果联系专家"])
            else:
                first.rank, first.words = 0, ["成果联系专家", *first.words]
                first.save(update_fields=["rank", "words"])
    return need
