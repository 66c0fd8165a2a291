"""Named actions of the abnormal-operation list (经营异常名录): who is due to be listed for a
report year once its season has closed, listing them by one decision (each told in writing),
an entity's application to come off once it has filed late (补报), and the bureau's removal or
refusal (the entity told either way). And the grounds found by staff: an entity a visit or a
spot check found not at its registered address (查无此主体), off once it has moved its
registration or can be reached there again; and one a spot check found to have published false
information (隐瞒真实情况、弄虚作假), off once it has corrected it. Each is listed by its own
decision and comes off on its statement, checked by staff."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import polars as pl
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from qifu import text as texts
from qifu.abnormal.models import Listing, PaperService, Ruling, Service, SetAside
from qifu.engine import reference, season
from qifu.engine.requests import workdays
from qifu.imports.models import ImportRun
from qifu.registry.models import Entity
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage
from qifu.reports.models import AnnualReport

REASON = Listing.Ground.NOT_FILED.label
DECIDE_WITHIN_WORKDAYS = Listing.DECIDE_WITHIN_WORKDAYS
# the listing itself is decided within ten working days of the season's close (same 办法, art. 6;
# 《个体工商户年度报告暂行办法》 art. 13 for the marking of individual businesses)
LIST_WITHIN_WORKDAYS = 10
SERIOUS_AFTER_YEARS = 3  # then the serious list (严重违法失信名单)
STANDING = Listing.STANDING
WARN_DAYS = 60  # warned this many days before the three years are up
FREE = "年报和移出均不收费，工作人员不会索要验证码。"


S = TypeVar("S", Listing, Ruling)  # a written decision served on paper


class ListingError(ValueError):
    """Something a person can fix, said in Chinese."""


def _cut(year: int) -> dt.datetime:
    """The first moment after the deadline, in the county's time."""
    return dt.datetime.combine(season.after(year), dt.time(), tzinfo=timezone.get_current_timezone())


def decide_by(year: int) -> dt.date:
    """The last day to decide ``year``'s listings: the tenth working day after its deadline
    (the State Council's holidays and make-up working days counted)."""
    return workdays.nth_after(season.deadline(year), LIST_WITHIN_WORKDAYS)


def answer_by(applied_on: dt.date) -> dt.date:
    """The last day to decide an application received on ``applied_on``: the fifth working day
    after it (``Listing.answer_by`` for one made)."""
    return workdays.nth_after(applied_on, DECIDE_WITHIN_WORKDAYS)


def overdue_from(today: dt.date) -> dt.date:
    """Applications received before this day are overdue on ``today``: five working days have
    passed after them by yesterday (``answer_by`` is before today)."""
    return workdays.nth_before(today, DECIDE_WITHIN_WORKDAYS)


def closed_year(today: dt.date | None = None) -> int:
    """The latest report year whose filing season has closed (30 June of the next year)."""
    return season.closed_year(today or timezone.localdate())


def not_ready(year: int, today: dt.date | None = None) -> str | None:
    """Why nobody can be listed for ``year`` yet, or None: its deadline has not passed, or the
    reports held were not imported after it (a county whose last import was in May would list
    everyone who filed in June), or none of the year's reports are held at all."""
    today = today or timezone.localdate()
    due = season.deadline(year)
    if today <= due:
        return f"{year} 年度年报的报送期限（{due.year}年{due.month}月{due.day}日）尚未届满，不能列入"
    last = ImportRun.objects.filter(kind="reports").aggregate(at=Max("finished_at"))["at"]
    if last is None or last < _cut(year):
        when = f"（最近一次在 {timezone.localtime(last):%Y-%m-%d}）" if last else ""
        return f"年报数据没有在 {due.month}月{due.day}日之后导入过{when}，请先导入截止后的年报数据，以免把按期报送的主体列入"
    if not AnnualReport.objects.filter(report_year=year).exists():
        return f"还没有 {year} 年度的年报数据"
    return None


def candidates(year: int, today: dt.date | None = None) -> QuerySet[Entity]:
    """The entities to list for ``year``: registered by its end and still trading (存续), with no
    report for it filed by 30 June of the next year, and not listed for it yet. Empty while
    ``not_ready``."""
    if not_ready(year, today):
        return Entity.objects.none()
    on_time = AnnualReport.objects.filter(report_year=year, filed_at__lt=_cut(year)).values("entity_id")
    listed = Listing.objects.filter(report_year=year).values("entity_id")
    return (Entity.objects.filter(status="active", established_on__lte=dt.date(year, 12, 31))
            .exclude(uscc__in=on_time).exclude(uscc__in=listed))


def kind_of(entity_type: str) -> str:
    """An individual business is marked; an enterprise or a cooperative is listed."""
    return Listing.Kind.MARK if entity_type == "individual" else Listing.Kind.LIST


# the word of a decision's number (文号): 异列〔2026〕00001号 for a listing, and for the later
# decisions 异移 (removal), 异不移 (refusal), 异撤 (annulment); each runs on through its year
WORD = {"list": "列", Ruling.Kind.REMOVE: "移", Ruling.Kind.REFUSE: "不移", Ruling.Kind.ANNUL: "撤"}


def _prefix(year: int, kind: str = "list") -> str:
    return f"异{WORD[kind]}〔{year}〕"


def numbered(year: int, seq: int, kind: str = "list") -> str:
    """A decision's number: 异列〔2026〕00001号 (a listing), 异移〔2026〕00001号 (a removal)…"""
    return f"{_prefix(year, kind)}{seq:05d}号"


def last_number(year: int, kind: str = "list") -> int:
    """The last sequence number given in ``year`` to decisions of ``kind``: numbers run on within
    the year of the decision, across townships and decisions. Read from the highest number, not a
    count, so a listing deleted (in admin) or imported under another numbering does not make the
    next decision collide."""
    model = Listing if kind == "list" else Ruling
    prefix = _prefix(year, kind)
    top = model.objects.filter(number__regex=rf"^{prefix}[0-9]{{5}}号$").aggregate(top=Max("number"))["top"]
    return int(top[len(prefix):-1]) if top else 0


RULING_ATTEMPTS = 50


def _rule(x: Listing, kind: str, by, reason: str, now: dt.datetime) -> Ruling:
    """The written decision of a removal, refusal or annulment of ``x`` (locked, before the
    decision changes it: the application it answers is read from it), with the next number of
    its year. Two decisions at the same moment on different listings may reach for the same
    number: the second waits for the first to commit, finds the number taken and takes the next.
    Each attempt lost is another decision made, so only that many at once exhaust the attempts."""
    today = timezone.localdate(now)
    applied_at = x.applied_at if x.status == Listing.Status.APPLIED else None
    for _attempt in range(RULING_ATTEMPTS):
        try:
            with transaction.atomic():
                return Ruling.objects.create(
                    listing=x, kind=kind, number=numbered(today.year, last_number(today.year, kind) + 1, kind),
                    decided_on=today, decided_at=now, decided_by=by, applied_at=applied_at, reason=reason[:300])
        except IntegrityError:
            continue
    raise ListingError("另一位同事正在作出决定，请稍后重试")


def do_list(year: int, by=None, town: str | None = None, now: dt.datetime | None = None) -> int:
    """List every candidate of ``year`` (of township ``town``; None: the county) by one
    decision: each gets a number of its own (异列〔year〕00001号…, in credit-code order) and is
    told in writing where a text or an email reaches it. Returns how many were listed."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    why = not_ready(year, today)
    if why:
        raise ListingError(why)
    try:
        with transaction.atomic():
            due = candidates(year, today)
            if town:
                due = due.filter(town_id=town)
            rows = list(due.order_by("uscc").values_list("uscc", "town_id", "entity_type", "name", "phone", "email"))
            if not rows:
                return 0
            start = last_number(today.year)
            listings = Listing.objects.bulk_create([
                Listing(entity_id=u, town_id=t, report_year=year, kind=kind_of(typ), reason=REASON,
                        number=numbered(today.year, start + i), listed_on=today, listed_by=by)
                for i, (u, t, typ, *_rest) in enumerate(rows, 1)], batch_size=2000)
            by_uscc = {x.entity_id: x for x in listings}
            names = {u: name for u, _t, _typ, name, _p, _e in rows}
            reach = decency.in_writing(pl.DataFrame([(u, p, e) for u, *_r, p, e in rows], orient="row",
                                                    schema={"uscc": pl.String, "phone": pl.String, "email": pl.String}))
            messages = [OutboxMessage(
                key=f"abnormal-listed:{u}:{year}", entity_id=u, purpose="abnormal", channel=channel, recipient=recipient,
                body=listed_text(names[u], year, by_uscc[u]),
                reason=f"{by_uscc[u].get_kind_display()} {by_uscc[u].number}", planned_for=today, next_attempt_at=now)
                for u, channel, recipient in reach.select("uscc", "channel", "recipient").iter_rows()]
            OutboxMessage.objects.bulk_create(messages, batch_size=2000, ignore_conflicts=True)
    except IntegrityError as e:  # another decision at the same moment took the same numbers
        raise ListingError("另一位同事正在作出列入决定，请稍后重试") from e
    return len(rows)


def _county() -> str:
    return reference.county()["county"]


def listed_text(name: str, year: int, x: Listing) -> str:
    return (f"【{_county()}市场监管局】{name}：因未在{year + 1}年6月30日前报送{year}年度年报，已被{x.decided}（{x.number}）。"
            f"请登录国家企业信用信息公示系统补报，补报后可登录企服平台申请移出。" + FREE)


def back_filed(x: Listing) -> bool:
    """Whether the listed entity has filed the year's report since (补报); never for a listing
    on a finding (an unreachable address, false information)."""
    if x.on_finding:
        return False
    return AnnualReport.objects.filter(entity_id=x.entity_id, report_year=x.report_year).exists()


# --- the grounds found by staff: not at its registered address (通过登记的住所或者经营场所无法联系),
# false information published (公示企业信息隐瞒真实情况、弄虚作假), and a spot check's order to correct it
# ignored (未在责令的期限内公示有关企业信息) ---------------------------------------------------------------


def told_key(x: Listing) -> str:
    """The key of the message that told the entity of ``x`` (``queries.unreached`` reads it): a
    year's by its year, one on a finding by its own id."""
    return f"abnormal-listed:{x.entity_id}:" + (f"u{x.pk}" if x.on_finding else str(x.report_year))


def unreachable_due(today: dt.date | None = None, entities: QuerySet[Entity] | None = None) -> list[dict]:
    """The entities to list as unreachable: still trading, a visit found nobody at the registered
    address (the contact task closed with ``NOT_AT_ADDRESS``: the fact, 查实, on its day), and not
    listed on this ground since (a standing listing, or one decided on or after that day), nor
    found there by a later visit (one closed with an outcome that reached it), nor set aside by
    staff who checked it (``do_set_aside``). Each
    with its latest such visit: ``entity``, ``found_on``, ``found`` (the visit's outcome as
    written), ``task`` and ``decide_by`` (the tenth working day after it, as for a season's
    listing); oldest first. ``entities``: those the reader sees (None: all)."""
    from qifu.reminders.actions import address_findings
    from qifu.reminders.models import ContactTask

    today = today or timezone.localdate()
    visits = ContactTask.objects.filter(entity__status="active")
    if entities is not None:
        visits = visits.filter(entity__in=entities)
    latest = address_findings(visits)
    listed: dict[str, list[Listing]] = {}
    for x in Listing.objects.filter(entity_id__in=list(latest), ground=Listing.Ground.UNREACHABLE):
        listed.setdefault(x.entity_id, []).append(x)
    set_aside = dict(SetAside.objects.filter(entity_id__in=list(latest)).values_list("entity_id")
                     .annotate(last=Max("found_on")))
    due = []
    for uscc, t in latest.items():
        found_on = timezone.localdate(t.closed_at)
        if found_on > today or any(x.standing or x.listed_on >= found_on for x in listed.get(uscc, [])):
            continue
        if uscc in set_aside and set_aside[uscc] >= found_on:  # checked, and not to be listed
            continue
        due.append({"entity": t.entity, "found_on": found_on, "found": t.outcome, "task": t,
                    "decide_by": workdays.nth_after(found_on, LIST_WITHIN_WORKDAYS)})
    return sorted(due, key=lambda d: (d["found_on"], d["entity"].uscc))


def do_set_aside(entity: Entity, found_on: dt.date, reason: str, by=None,
                 now: dt.datetime | None = None) -> SetAside:
    """Staff checked the finding of ``found_on`` that ``entity`` cannot be reached at its address
    and decide not to list it (核实后不予列入), saying why (at least four characters: reached by
    phone and trading there, the new address registered, the visit went to the wrong door). The
    finding leaves the list of those to decide; a later visit that finds the address empty again
    is a new one. Only a finding still waiting for its decision can be set aside."""
    now = now or timezone.now()
    reason = texts.written(reason, "核实情况", ListingError, "请写明核实的情况（至少4个字），如：已电话联系法定代表人，企业仍在登记住所经营，上门时恰逢停工")
    waiting = unreachable_due(timezone.localdate(now), Entity.objects.filter(pk=entity.pk))
    if not waiting or waiting[0]["found_on"] != found_on:
        raise ListingError("该主体没有这一天查实、待作出决定的登记住所无法联系记录（可能已列入或已处理）")
    return SetAside.objects.create(entity=entity, found_on=found_on, reason=reason[:300], decided_by=by, decided_at=now)


def do_list_unreachable(entity: Entity, found_on: dt.date, found: str, by=None,
                        now: dt.datetime | None = None) -> Listing:
    """List ``entity`` because it cannot be reached at its registered address: ``found_on``, the
    day that was found (not after today), and ``found``, how (a visit, the post returned, a spot
    check: at least four characters; the decision says it). Its own decision, with the next
    number of the year; the registered address kept with it; the entity told where a text or an
    email reaches it. One standing on this ground at a time."""
    return _list_on_finding(
        entity, Listing.Ground.UNREACHABLE, found_on, found, by, now,
        "请写明核查情况（至少4个字），如：5月12日实地核查，登记住所为空置厂房，无人经营",
        lambda x: f"【{_county()}市场监管局】{entity.name}：经实地核查，通过登记的住所或者经营场所无法与您单位联系，"
                  f"已被{x.decided}（{x.number}）。办理住所变更登记，或能够在登记住所取得联系后，"
                  f"可登录企服平台申请移出。" + FREE)


def do_list_false(entity: Entity, found_on: dt.date, found: str, by=None, now: dt.datetime | None = None) -> Listing:
    """List ``entity`` because what it published was found to hide the truth or to be false (a
    spot check's finding, 查实 on ``found_on``; ``found`` says what: at least four characters, the
    decision quotes it). As for an unreachable address: its own decision and number, the entity
    told, one standing on this ground at a time; off once it has corrected what it published and
    staff have checked it."""
    return _list_on_finding(
        entity, Listing.Ground.FALSE_INFO, found_on, found, by, now,
        "请写明查实的情况（至少4个字），如：年报从业人数30人，社保参保记录为3人",
        lambda x: f"【{_county()}市场监管局】{entity.name}：经检查，您单位公示的信息隐瞒真实情况、弄虚作假，"
                  f"已被{x.decided}（{x.number}）。更正公示的信息后，可登录企服平台申请移出。" + FREE)


def do_list_uncorrected(entity: Entity, found_on: dt.date, found: str, by=None,
                        now: dt.datetime | None = None) -> Listing:
    """List ``entity`` because it did not correct what it published by the day a spot check
    ordered (未在责令的期限内公示有关企业信息): ``found_on``, the day staff found it still not
    corrected, after that day; ``found`` says what was ordered and what they found (at least four
    characters; the decision quotes it). As for false information: its own decision and number,
    the entity told, one standing on this ground at a time; off once it has corrected it and staff
    have checked it."""
    return _list_on_finding(
        entity, Listing.Ground.UNCORRECTED, found_on, found, by, now,
        "请写明责令改正的事项和复查的情况（至少4个字），如：责令更正年报从业人数，期满复查仍未更正",
        lambda x: f"【{_county()}市场监管局】{entity.name}：您单位未在责令的期限内更正公示的信息，"
                  f"已被{x.decided}（{x.number}）。更正后，可登录企服平台申请移出。" + FREE)


def _list_on_finding(entity: Entity, ground: str, found_on: dt.date, found: str, by, now: dt.datetime | None,
                     example: str, told) -> Listing:
    now = now or timezone.now()
    today = timezone.localdate(now)
    found = texts.written(found, "核查情况", ListingError, example)
    if found_on > today:
        raise ListingError("查实日期不能晚于今天")
    if entity.status != "active":
        raise ListingError("该主体已不在存续状态，不能列入")
    label = Listing.Ground(ground).label
    try:
        with transaction.atomic():
            if Listing.objects.filter(entity=entity, ground=ground, status__in=STANDING).exists():
                raise ListingError(f"该主体已因{label}列入经营异常名录，尚未移出")
            x = Listing.objects.create(
                entity=entity, town_id=entity.town_id, ground=ground, kind=kind_of(entity.entity_type),
                reason=label, number=numbered(today.year, last_number(today.year) + 1), listed_on=today,
                listed_by=by, found_on=found_on, found=found[:300],
                address=(entity.address or "") if ground == Listing.Ground.UNREACHABLE else "")
            decency.tell_once(told_key(x), entity.uscc, "abnormal", entity.phone, entity.email, told(x),
                              f"{x.get_kind_display()} {x.number}", now)
    except IntegrityError as e:  # another decision at the same moment took the same number
        raise ListingError("另一位同事正在作出列入决定，请稍后重试") from e
    return x


def _typed(value: str, what: str) -> str:
    """Text staff typed, stripped; ``ListingError`` naming ``what`` if it holds control characters
    (it goes into the listing, the entity's message and, for an annulment, the objection's answer)."""
    return texts.typed(value, what, ListingError)


def _locked(x: Listing, *states: str, why: str) -> Listing:
    x = Listing.objects.select_for_update().select_related("entity").get(pk=x.pk)
    if x.status not in states:
        raise ListingError(why)
    return x


def do_apply(x: Listing, by=None, now: dt.datetime | None = None, statement: str = "") -> Listing:
    """The entity applies to come off (申请移出): for a year not filed, only once it has filed
    the year's report; for an unreachable address, saying how it can be reached there again or
    that it has registered its new address (``statement``, at least four characters; the bureau
    checks it). In the portal (``by`` None) or entered by staff for it."""
    now = now or timezone.now()
    statement = _typed(statement, "申请说明")
    with transaction.atomic():
        x = _locked(x, Listing.Status.LISTED, why="已申请移出或已移出，不需再申请")
        if x.unreachable:
            if len(statement) < texts.AT_LEAST:
                raise ListingError("请说明现在如何能在登记的住所或者经营场所联系到您单位，或已办理住所变更登记（至少4个字）")
        elif x.false_info or x.uncorrected:
            if len(statement) < texts.AT_LEAST:
                raise ListingError("请说明已更正了哪些公示的信息（至少4个字），如：已更正2025年度年报的从业人数和营业收入")
        elif not back_filed(x):
            raise ListingError(f"请先在国家企业信用信息公示系统补报 {x.report_year} 年度年报，补报后再申请移出"
                               f"（已补报的，平台导入年报数据后即可申请；仍不能申请的，请联系所在地市场监管所）")
        x.status, x.applied_at, x.applied_channel = Listing.Status.APPLIED, now, "staff" if by else "portal"
        x.applied_note = statement[:300] if x.on_finding else ""
        x.save(update_fields=["status", "applied_at", "applied_channel", "applied_note"])
    return x


def do_remove(x: Listing, by, note: str = "", now: dt.datetime | None = None) -> Listing:
    """The bureau takes the entity off (移出): on its application, or of its own motion once the
    report is filed; for an unreachable address, once staff have checked that it can be reached
    there again or has registered another (``note`` says what was checked: at least four
    characters; the decision says it). The entity is told."""
    note = _typed(note, "移出说明")
    now = now or timezone.now()
    with transaction.atomic():
        x = _locked(x, *STANDING, why="已经移出或撤销")
        if x.on_finding:
            if len(note) < texts.AT_LEAST:
                raise ListingError("请写明核实的情况（至少4个字），如：6月3日实地核实，企业已在登记住所恢复经营"
                                   if x.unreachable else "请写明核实的情况（至少4个字），如：已核对更正后的年报与社保记录一致")
        elif not back_filed(x):
            raise ListingError(f"该主体尚未补报 {x.report_year} 年度年报，不能移出")
        r = _rule(x, Ruling.Kind.REMOVE, by, note, now)
        x.status, x.removed_on, x.removed_by, x.note = Listing.Status.REMOVED, timezone.localdate(now), by, note[:300]
        x.save(update_fields=["status", "removed_on", "removed_by", "note"])
        done = ("经核实已可以联系到您单位" if x.unreachable else "经核实您单位已更正公示的信息" if x.on_finding
                else f"您单位已补报{x.report_year}年度年报")
        decency.tell_once(f"abnormal-removed:{x.pk}", x.entity_id, "abnormal", x.entity.phone, x.entity.email,
                          f"【{_county()}市场监管局】{x.entity.name}：{done}，"
                          f"已于{x.removed_on.month}月{x.removed_on.day}日{x.undone}（{r.number}，原{x.number}），"
                          f"决定书可登录企服平台查看打印。" + FREE,
                          f"移出 {x.number}", now)
    return x


def do_refuse(x: Listing, by, reason: str, now: dt.datetime | None = None) -> Listing:
    """The bureau refuses an application (不予移出), saying why (for example, the late report
    is itself false); the entity is told and may apply again once it has put that right."""
    now = now or timezone.now()
    reason = texts.written(reason, "不予移出的原因", ListingError, "不予移出须写明原因（至少4个字），企业会收到")
    with transaction.atomic():
        x = _locked(x, Listing.Status.APPLIED, why="只有已申请移出的可以不予移出")
        r = _rule(x, Ruling.Kind.REFUSE, by, reason, now)
        x.status, x.applied_at, x.applied_channel, x.note = Listing.Status.LISTED, None, "", reason[:300]
        x.removed_by = by  # who decided, until the next decision
        x.save(update_fields=["status", "applied_at", "applied_channel", "note", "removed_by"])
        decency.tell_once(refusal_key(r), x.entity_id, "abnormal", x.entity.phone,
                          x.entity.email,
                          f"【{_county()}市场监管局】{x.entity.name}：您单位{x.undone}的申请（{x.number}）未获同意（{r.number}）："
                          f"{reason[:120]}。处理后可再次申请。" + FREE, f"不予移出 {x.number}", now)
    return x


def refusal_key(r: Ruling) -> str:
    """The key of the message that told the entity of refusal ``r`` (one per refusal: a firm may
    apply again and be refused again)."""
    return f"abnormal-refused:{r.listing_id}:{int(r.decided_at.timestamp())}"


def do_annul(x: Listing, by, reason: str, now: dt.datetime | None = None) -> Listing:
    """The bureau annuls a listing found wrong (撤销, 更正): the report was filed in time after
    all (on paper at the bureau, or before the data reached qifu), or the entity was not due. It
    says what it found; the entity is told. An annulled listing stays on record (its number is not
    given again) and the entity is not due for that year again. The entity's objection to it, if
    open, is answered by it: the one message the entity gets says both."""
    now = now or timezone.now()
    reason = texts.written(reason, "核实的情况", ListingError, "撤销须写明核实的情况（至少4个字），如：企业已于6月20日报送纸质年报")
    with transaction.atomic():
        x = _locked(x, *STANDING, why="只有列入中或已申请移出的可以撤销")
        r = _rule(x, Ruling.Kind.ANNUL, by, reason, now)
        x.status, x.removed_on, x.removed_by, x.note = Listing.Status.ANNULLED, timezone.localdate(now), by, reason[:300]
        x.save(update_fields=["status", "removed_on", "removed_by", "note"])
        answered = ""
        if x.objection_id:
            from qifu.service_requests import actions as requests

            who = requests.Actor.staff(by) if by is not None else requests.SYSTEM
            if requests.do_settle(x.objection, who, f"经核实，经营异常名录 {x.number} 列入有误，已撤销：{reason[:300]}", now):
                answered = f"您提出的异议（诉求编号{x.objection.number}）已据此答复，可登录企服平台评价。"
        decency.tell_once(f"abnormal-annulled:{x.pk}", x.entity_id, "abnormal", x.entity.phone, x.entity.email,
                          f"【{_county()}市场监管局】{x.entity.name}：经核实，您单位因{x.because}被{x.decided}（{x.number}）"
                          f"有误，已于{x.removed_on.month}月{x.removed_on.day}日撤销（{r.number}）。{answered}" + FREE, f"撤销 {x.number}", now)
    return x


def do_object(x: Listing, text: str, now: dt.datetime | None = None):
    """The entity objects to its listing (异议: it filed in time, or was not due): an enterprise
    request in 年报与信用修复, routed and timed like any other, linked on the listing; once while
    that request is open. Staff annul the listing if they find it wrong, or answer why not."""
    from qifu.engine.requests.workflow import State
    from qifu.service_requests import actions as requests

    now = now or timezone.now()
    text = texts.written(text, "异议理由", ListingError, "请写明异议的理由（至少4个字），如：已于6月20日在公示系统报送")
    with transaction.atomic():
        x = _locked(x, *STANDING, why="这条记录已移出或撤销，不需提出异议")
        if x.objection_id and x.objection.status != State.CLOSED:
            raise ListingError(f"已就这条记录提出异议（诉求编号 {x.objection.number}），正在办理")
        body = f"【经营异常名录异议】{x.number}（{x.about}，{x.get_kind_display()}）：{text}"
        try:  # the queue's own rules (control characters, length, a firm's hourly limit)
            with transaction.atomic():
                req = requests.do_submit_request(text=body, channel="portal", actor=requests.ENTERPRISE,
                                                 entity=x.entity, category="annual_report", now=now)
        except requests.RequestError as e:
            raise ListingError(str(e)) from None
        x.objection = req
        x.save(update_fields=["objection"])
    return req


def warn_before(today: dt.date) -> dt.date:
    """Listings on or before this day reach three years within ``WARN_DAYS`` days of ``today``."""
    return _years_before(today + dt.timedelta(days=WARN_DAYS), SERIOUS_AFTER_YEARS)


def _years_before(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def serious_on(x: Listing) -> dt.date:
    """The day a listing still standing moves the entity to the serious list."""
    return _years_before(x.listed_on, -SERIOUS_AFTER_YEARS)


def import_listings(rows: list[dict]) -> tuple[int, int, int, list[tuple[int, str, str, str]]]:
    """`qifu import abnormal FILE`: the list as the national system holds it, one row per entity
    and report year (``__row`` its line). A new one is stored as listed there (removed, with a
    removal date); a known one takes the file's number and date, and its removal made there.
    Nobody is told: the national system told them. Returns (new, changed, unchanged, problems):
    problems are (row, field, value, reason), and with any nothing may be stored."""
    problems: list[tuple[int, str, str, str]] = []
    seen: dict[str, int] = {}
    for r in rows:
        if r["number"] in seen:
            problems.append((r["__row"], "number", r["number"], f"决定书文号与第 {seen[r['number']]} 行重复"))
        seen.setdefault(r["number"], r["__row"])
        if r.get("removed_on") and r["removed_on"] < r["listed_on"]:
            problems.append((r["__row"], "removed_on", r["removed_on"].isoformat(), "移出日期早于列入日期"))
    existing = {(x.entity_id, x.report_year): x for x in
                Listing.objects.filter(entity_id__in={r["uscc"] for r in rows})}
    taken = {n: (u, y) for n, u, y in Listing.objects.filter(number__in=list(seen))
             .values_list("number", "entity_id", "report_year")}
    for r in rows:
        other = taken.get(r["number"])
        if other is not None and other != (r["uscc"], r["report_year"]):
            what = f"{other[1]} 年度" if other[1] else "无法联系"
            problems.append((r["__row"], "number", r["number"], f"决定书文号已用于另一条记录（{other[0]}，{what}）"))
    if problems:
        return 0, 0, 0, problems
    entities = {u: (t, typ) for u, t, typ in Entity.objects.filter(uscc__in={r["uscc"] for r in rows})
                .values_list("uscc", "town_id", "entity_type")}
    new, changed, same = [], [], 0
    for r in rows:
        x = existing.get((r["uscc"], r["report_year"]))
        removed = r.get("removed_on")
        if x is None:
            town, typ = entities[r["uscc"]]
            new.append(Listing(entity_id=r["uscc"], town_id=town, report_year=r["report_year"], kind=kind_of(typ),
                               reason=REASON, number=r["number"], listed_on=r["listed_on"], imported=True,
                               status=Listing.Status.REMOVED if removed else Listing.Status.LISTED, removed_on=removed,
                               note=NATIONAL if removed else ""))
            continue
        before = (x.number, x.listed_on, x.status, x.removed_on)
        x.number, x.listed_on = r["number"], r["listed_on"]
        if removed and x.status != Listing.Status.ANNULLED and (x.status != Listing.Status.REMOVED or x.removed_on != removed):
            x.status, x.removed_on, x.note = Listing.Status.REMOVED, removed, NATIONAL
        if (x.number, x.listed_on, x.status, x.removed_on) == before:
            same += 1
        else:
            changed.append(x)
    with transaction.atomic():
        Listing.objects.bulk_update(changed, ["number", "listed_on", "status", "removed_on", "note"], batch_size=2000)
        Listing.objects.bulk_create(new, batch_size=2000)
    return len(new), len(changed), same, []


NATIONAL = "已在国家企业信用信息公示系统移出"


def warn_serious(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): every entity still listed whose three years are up within
    ``WARN_DAYS`` days is warned once, in writing, that it then goes on the serious list and
    how to come off before (the bureau's public notice is the national system's). Returns the
    messages queued."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = list(Listing.objects.filter(status__in=STANDING, listed_on__lte=warn_before(today))
               .select_related("entity").order_by("pk"))
    told = decency.told(f"abnormal-serious:{x.pk}" for x in due)
    n = 0
    for x in due:
        key = f"abnormal-serious:{x.pk}"
        if key in told or serious_on(x) < today:
            continue
        on = serious_on(x)
        way = x.way_off
        body = (f"【{_county()}市场监管局】{x.entity.name}：您单位因{x.because}列入经营异常名录（{x.number}），"
                f"将于{on.year}年{on.month}月{on.day}日满三年。满三年仍未移出的，将列入严重违法失信名单，法定代表人三年内不得担任"
                f"其他企业的法定代表人。请尽快{way}并登录企服平台申请移出。" + FREE)
        if decency.tell_once(key, x.entity_id, "abnormal", x.entity.phone, x.entity.email, body,
                             f"列入满三年预警 {x.number}", now) is not None:
            n += 1
    return n


# --- serving the written decision (送达) ----------------------------------------------------------


NO_SIGNATURE = "请写明签收人，或邮件号、公告编号"
SERVED_FIELDS = ["served_on", "served_way", "served_note", "served_by"]


def _day_problem(x: PaperService, on: dt.date, today: dt.date) -> str | None:
    """Why ``on`` cannot be the day ``x`` (a listing, a refusal) was served: before it was
    decided, or after today."""
    if not x.decided_day <= on <= today:
        what = "列入日期" if isinstance(x, Listing) else "决定日期"
        return f"应在{what}（{x.decided_day:%Y-%m-%d}）之后、不晚于今天"
    return None


def _served(x: PaperService, way: str, on: dt.date, note: str, by) -> None:
    x.served_on, x.served_way, x.served_note, x.served_by = on, way, note[:200], by


def do_serve(x: S, way: str, on: dt.date, note: str, by=None, today: dt.date | None = None,
             proof: tuple[str, str, bytes] | None = None) -> S:
    """The written decision ``x`` (a listing's, or a refusal to remove) served on paper, where no
    text or email reached the entity: how (直接送达, 邮寄送达, 公告送达), on which day (not before
    the decision, not after today) and who signed for it, or the post's or the notice's number.
    Once. ``proof``: the signed proof of service scanned, if at hand (``do_attach_proof`` adds it
    later)."""
    today = today or timezone.localdate()
    note = _typed(note, "签收人或公告编号")
    if way not in Service.values:
        raise ListingError("请选择送达方式：直接送达、邮寄送达或公告送达")
    if len(note) < 2:
        raise ListingError(NO_SIGNATURE)
    with transaction.atomic():
        x = type(x).objects.select_for_update().get(pk=x.pk)
        if x.served_on is not None:
            raise ListingError(f"{x.number} 已于{x.served_on:%Y-%m-%d}{x.get_served_way_display()}")
        if why := _day_problem(x, on, today):
            raise ListingError(f"送达日期{why}")
        _served(x, way, on, note, by)
        x.save(update_fields=SERVED_FIELDS)
    if proof is not None:
        x = do_attach_proof(x, proof)
    return x


def do_attach_proof(x: S, proof: tuple[str, str, bytes]) -> S:
    """The proof of service of ``x`` (送达回证 signed, the post's receipt, the public notice),
    scanned: ``proof`` is (name, media type, content) as ``service_requests.attachments.checked``
    gives it, kept under its SHA-256 with the attachments (and so in each backup). Only once the
    service is recorded; a second scan takes the first one's place (a clearer copy)."""
    from qifu.service_requests import attachments

    with transaction.atomic():
        x = type(x).objects.select_for_update().get(pk=x.pk)
        if x.served_on is None:
            raise ListingError("请先登记送达方式和日期，再上传送达回证")
        x.proof_name, x.proof_sha256 = proof[0][:200], attachments.store(proof[2])
        x.save(update_fields=["proof_name", "proof_sha256"])
    return x


# service by public notice (公告送达) is complete thirty days after the notice is published
# (民事诉讼法 art. 95, which the market regulators' procedure follows)
NOTICE_DAYS = 30


def do_serve_by_notice(listings: QuerySet[Listing], number: str, published_on: dt.date, by=None,
                       today: dt.date | None = None) -> int:
    """The decisions of ``listings`` (those the reader may act on) not yet served, served by one
    public notice (公告送达): its number and the day it was published (not after today, not before
    any of their listings); each is served ``NOTICE_DAYS`` days after that day, when the notice's
    period ends (a day that may still be to come: the appeal's periods run from it). All or
    nothing. Returns how many were served."""
    today = today or timezone.localdate()
    number = _typed(number, "公告编号")
    if len(number) < 2:
        raise ListingError("请写明公告编号或公告的发布处（如：慈市监公告〔2026〕12号）")
    if published_on > today:
        raise ListingError("公告发布日期不能晚于今天")
    with transaction.atomic():
        todo = list(listings.filter(served_on__isnull=True).select_for_update().order_by("number"))
        early = [x.number for x in todo if x.listed_on > published_on]
        if early:
            raise ListingError(f"公告发布日期早于列入日期：{'、'.join(early[:5])}{'等' if len(early) > 5 else ''}")
        on = published_on + dt.timedelta(days=NOTICE_DAYS)
        note = f"公告 {number}（{published_on:%Y-%m-%d}发布，满{NOTICE_DAYS}日视为送达）"
        for x in todo:
            _served(x, Service.NOTICE, on, note, by)
        Listing.objects.bulk_update(todo, SERVED_FIELDS, batch_size=1000)
    return len(todo)


SERVICE_COLUMNS = {"决定书文号": "number", "送达方式": "way", "送达日期": "on", "签收人或公告编号": "note"}


def read_service(path) -> list[dict]:
    """The service list (送达清单) as staff filled it in (XLSX, or CSV in any of the bureau's
    encodings): each row's number, way, day and note as typed, and its line (``__row``)."""
    from qifu.engine.errors import FileProblem
    from qifu.engine.reading import read_filled

    try:
        return read_filled(path, SERVICE_COLUMNS, "送达清单")
    except FileProblem as e:
        raise ListingError(str(e)) from None


def do_record_service(rows: list[dict], listings: QuerySet[Listing], by=None,
                      today: dt.date | None = None) -> tuple[int, int, list[tuple[int, str, str, str]]]:
    """The service list filled in, all or nothing: each row with a way, a day and a note is a
    decision served (``do_serve``'s rules); a row with none of them is not served yet and left.
    ``listings``: those the reader may act on. Returns (served, unchanged, problems): problems are
    (row, column, value, reason), and with any nothing is stored. A row already recorded the
    same way is unchanged."""
    from qifu.engine.contract import Field, T
    from qifu.engine.validate import parse_values

    today = today or timezone.localdate()
    fields = {"way": Field("way", "送达方式", T.ENUM, choices=tuple(Service.choices)),
              "on": Field("on", "送达日期", T.DATE)}
    problems: list[tuple[int, str, str, str]] = []
    todo: list[tuple[int, str, str, dt.date, str]] = []
    seen: dict[str, int] = {}
    for r in rows:
        row, number = r["__row"], (r["number"] or "").strip()
        given = [(r[k] or "").strip() for k in ("way", "on", "note")]
        if not any(given):
            continue
        if number in seen:
            problems.append((row, "决定书文号", number, f"与第 {seen[number]} 行重复"))
            continue
        seen[number] = row
        values, errors = parse_values({"way": given[0], "on": given[1]}, fields)
        for name, label in (("way", "送达方式"), ("on", "送达日期")):
            if name in errors:
                problems.append((row, label, r[name], errors[name]))
            elif values[name] is None:
                problems.append((row, label, "", "已填了送达情况的行，这一列不能为空"))
        note = given[2]
        if texts.problem(note):
            problems.append((row, "签收人或公告编号", note[:40], texts.problem(note)))
        elif len(note) < 2:
            problems.append((row, "签收人或公告编号", note, NO_SIGNATURE))
        if not errors and values["way"] is not None and values["on"] is not None:
            todo.append((row, number, values["way"], values["on"], note))
    with transaction.atomic():  # the rows locked: two lists at once record each service once
        found = {x.number: x for x in listings.filter(number__in=[t[1] for t in todo]).select_for_update()}
        served, same = [], 0
        for row, number, way, on, note in todo:
            x = found.get(number)
            if x is None:
                problems.append((row, "决定书文号", number, "没有这个决定书文号，或不在您的办理范围"))
            elif x.served_on is not None:
                if (x.served_way, x.served_on, x.served_note) == (way, on, note[:200]):
                    same += 1
                else:
                    problems.append((row, "决定书文号", number,
                                     f"已于{x.served_on:%Y-%m-%d}{x.get_served_way_display()}（{x.served_note}），与本行不同"))
            elif why := _day_problem(x, on, today):
                problems.append((row, "送达日期", on.isoformat(), why))
            else:
                _served(x, way, on, note, by)
                served.append(x)
        if problems:
            return 0, 0, sorted(problems)
        Listing.objects.bulk_update(served, SERVED_FIELDS, batch_size=1000)
    return len(served), same, []
