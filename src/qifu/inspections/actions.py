"""Named actions of the spot checks (年报抽查): who may be drawn for a report year, the draw
itself (the entities by a seed kept with it, so that anyone can draw them again; two inspectors
for each, at random, from the staff who may check it), and the inspectors' result, which a
report found false or an address found empty turns into a listing on the abnormal-operation
list (``abnormal.actions``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import secrets
from decimal import Decimal, InvalidOperation

import polars as pl
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import CharField, Func, QuerySet, Value
from django.db.models.functions import SHA256, Concat
from django.utils import timezone

from qifu import text as texts
from qifu.abnormal import actions as abnormal
from qifu.abnormal.models import Listing
from qifu.accounts import scope
from qifu.accounts.models import StaffProfile
from qifu.engine import reference
from qifu.engine.policies.policy import PolicyError
from qifu.inspections import queries
from qifu.inspections.models import Evidence, Extension, Inspection, Sample
from qifu.registry.models import Entity, Township
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage
from qifu.reports.models import AnnualReport
from qifu.service_requests import attachments

Result = Sample.Result
INSPECTORS = 2  # each entity is checked by two inspectors (执法检查人员不得少于两人)
FINISH_DAYS = 60  # the checks' default time, from the draw
# an order to correct gives ten days (《企业公示信息抽查暂行办法》: 责令其在10日内履行公示义务); an entity
# that has not corrected by then is listed (未在责令的期限内公示有关企业信息)
CORRECT_WITHIN_DAYS = 10
REMIND_DAYS_BEFORE = 3  # an entity that has said nothing is reminded once, three days before the last day
# a written check (书面检查) tells each entity drawn to send its documents by a day: 15 days from the
# draw on the page, at least 5 (time to find a payroll and a tax return)
DOCUMENTS_DAYS = 15
DOCUMENTS_DAYS_AT_LEAST = 5
EXTEND_DAYS_AT_LEAST = 3  # a day put later leaves the firms told of it at least three days
TELL_CHUNK = 2000  # samples told at once
# the documents sent for one check: a payroll, social insurance, accounts and tax returns, some
# of them month by month, are more than a request's five attachments
EVIDENCE_FILES = 10
CHECK_IS_FREE = "检查不收费，工作人员不会索要验证码。"
# the result is published within 20 working days of the check's end (《企业公示信息抽查暂行办法》);
# qifu shows it to the entity as soon as it is recorded


class InspectionError(ValueError):
    """A draw or a result that cannot be made; the message says why, in Chinese."""


def eligible(year: int, town: str | None = None) -> QuerySet[Entity]:
    """The entities that may be drawn for ``year``: still trading, the year's report filed (the
    check is of what it published), of ``town`` (None: the county), and not drawn already for the
    same year (no entity is checked twice for one report)."""
    qs = Entity.objects.filter(status="active",
                               uscc__in=AnnualReport.objects.filter(report_year=year).values("entity_id"))
    if town:
        qs = qs.filter(town_id=town)
    return qs.exclude(uscc__in=Sample.objects.filter(inspection__year=year).values("entity_id"))


def population(year: int, town: str | None = None, criteria: str = "") -> list[str]:
    """The credit codes that may be drawn (``eligible``), sorted; with ``criteria``, those whose
    profile meets it (an expression of the policies' language, ``PolicyError`` if wrong)."""
    codes = set(eligible(year, town).values_list("uscc", flat=True))
    if criteria.strip():
        from qifu.policies.actions import entities_where

        codes &= set(entities_where(year, criteria, "定向条件"))
    return sorted(codes)


def size(n: int, rate: Decimal) -> int:
    """How many of ``n`` a rate of ``rate`` per cent draws: rounded up, at least one of a
    population that is not empty."""
    return min(n, max(1, math.ceil(n * rate / 100))) if n else 0


def ticket(seed: str, uscc: str) -> str:
    """An entity's ticket in the draw by ``seed``: the SHA-256 of the seed followed by its credit
    code, in lowercase hexadecimal. The draw takes the smallest tickets: anyone who has the
    population and the seed can draw the same entities, in any language or in the database."""
    return hashlib.sha256(f"{seed}{uscc}".encode()).hexdigest()


def draw(codes: list[str], k: int, seed: str) -> list[str]:
    """The ``k`` of ``codes`` with the smallest tickets (``ticket``), smallest first."""
    return sorted(codes, key=lambda u: ticket(seed, u))[:k]


class _SHA256(SHA256):
    """Django's SHA-256 in lowercase hexadecimal, on PostgreSQL by its own function (11 and
    later) rather than pgcrypto's ``digest``, an extension a county's database need not have."""

    def as_postgresql(self, compiler, connection, **extra):
        return Func.as_sql(self, compiler, connection,
                           template="ENCODE(SHA256(CONVERT_TO(%(expressions)s, 'UTF8')), 'hex')", **extra)


def draw_in_database(qs: QuerySet[Entity], k: int, seed: str) -> list[str]:
    """``draw`` over the entities of ``qs``, by the database itself (its SHA-256: PostgreSQL's,
    and the one Django gives SQLite), so that a province's population never comes into Python."""
    tickets = qs.annotate(ticket=_SHA256(Concat(Value(seed), "uscc", output_field=CharField())))
    return list(tickets.order_by("ticket").values_list("uscc", flat=True)[:k])


def inspector_pool() -> tuple[dict[str, list], list]:
    """Who may be sent to check: each township's officers, and the county's administrators (who
    may be sent anywhere); active accounts only, in a fixed order."""
    towns: dict[str, list] = {}
    county = []
    profiles = StaffProfile.objects.filter(user__is_active=True, role__in=[StaffProfile.Role.OFFICER,
                                                                           StaffProfile.Role.ADMIN])
    for p in profiles.select_related("user").order_by("user__username"):
        if p.role == StaffProfile.Role.OFFICER:
            if p.town_id:
                towns.setdefault(p.town_id, []).append(p.user)
        else:
            county.append(p.user)
    User = get_user_model()
    county += list(User.objects.filter(is_superuser=True, is_active=True, staff_profile__isnull=True)
                   .order_by("username"))
    return towns, county


def choose_inspectors(rng: random.Random, town: str, towns: dict[str, list], county: list) -> list:
    """Two inspectors at random: the township's officers where it has two, topped up from the
    county's administrators where it has fewer (fewer than two only when the county has not
    enough staff at all)."""
    own = towns.get(town, [])
    if len(own) >= INSPECTORS:
        return rng.sample(own, INSPECTORS)
    others = [u for u in county if u not in own]
    return own + rng.sample(others, min(INSPECTORS - len(own), len(others)))


def _number(year: int) -> str:
    prefix = f"抽〔{year}〕"
    last = list(Inspection.objects.filter(number__startswith=prefix).values_list("number", flat=True))
    seq = max((int(n[len(prefix):].removesuffix("号")) for n in last), default=0) + 1
    return f"{prefix}{seq:03d}号"


def _rate(value) -> Decimal:
    try:
        rate = Decimal(str(value).strip().removesuffix("%"))
    except InvalidOperation:
        raise InspectionError(f"抽查比例应为百分数，如 3 或 5.5，而不是 {value!r}") from None
    if not rate.is_finite() or rate <= 0 or rate > 100:
        raise InspectionError("抽查比例应大于 0 且不超过 100（%）")
    return rate.quantize(Decimal("0.01"))


def do_draw(year: int, kind: str, title: str, rate, by=None, town: str | None = None, criteria: str = "",
            finish_by: dt.date | None = None, seed: str | None = None, now: dt.datetime | None = None,
            documents_by: dt.date | None = None) -> Inspection:
    """Draw a spot check of ``year``'s reports: ``rate`` per cent of the population (rounded
    up), at random by ``seed`` (a new random one when None: the smallest tickets, ``ticket``),
    each entity with two inspectors drawn from the same seed; a targeted check (``kind``
    targeted) draws from those its ``criteria`` select. Everything in one transaction, numbered
    抽〔2026〕001号. With ``documents_by`` it is a written check: the entities drawn are told to
    send their documents by that day (``tell_drawn``, by the worker)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    title = _typed(title, "任务名称")
    criteria = _typed(criteria, "定向条件")
    if kind not in Inspection.Kind.values:
        raise InspectionError("请选择抽查方式：双随机抽查或定向抽查")
    if not 2000 <= year < today.year:
        raise InspectionError(f"报告年度应为 {today.year - 1} 年或更早")
    if not title:
        raise InspectionError("请填写任务名称，如：2025年度企业年报双随机抽查")
    if kind == Inspection.Kind.TARGETED and not criteria:
        raise InspectionError("定向抽查请写明定向条件，如：open_findings > 0（年报有未处理的严重校验问题）")
    if kind == Inspection.Kind.RANDOM and criteria:
        raise InspectionError("双随机抽查从全部已报送年报的主体中抽取，不设定向条件；需要定向条件请选择定向抽查")
    rate = _rate(rate)
    finish_by = finish_by or today + dt.timedelta(days=FINISH_DAYS)
    if finish_by < today:
        raise InspectionError("检查完成期限不能早于今天")
    if documents_by:
        _documents_day_allowed(documents_by, today, DOCUMENTS_DAYS_AT_LEAST, finish_by)
    if town and not Township.objects.filter(code=town).exists():
        raise InspectionError(f"没有这个镇街：{town}")
    seed = seed or secrets.token_hex(8)
    try:  # a random draw in the database; a targeted one over the profile's firms (as a policy's)
        codes = population(year, town, criteria) if criteria else None
    except PolicyError as e:
        raise InspectionError(str(e)) from None
    n = len(codes) if codes is not None else eligible(year, town).count()
    if not n:
        raise InspectionError(f"抽查范围内没有可抽取的主体（{year} 年度已报送年报、尚未被抽查过的存续主体）")
    chosen = draw(codes, size(n, rate), seed) if codes is not None else \
        draw_in_database(eligible(year, town), size(n, rate), seed)
    towns, county = inspector_pool()
    rng = random.Random(f"{seed}:inspectors")
    entities = Entity.objects.in_bulk(chosen)
    try:
        with transaction.atomic():
            x = Inspection.objects.create(number=_number(today.year), year=year, kind=kind, title=title[:100],
                                          criteria=criteria[:1000], rate=rate, town_id=town or None, seed=seed,
                                          population=n, drawn_at=now, drawn_by=by, finish_by=finish_by,
                                          documents_by=documents_by)
            samples = Sample.objects.bulk_create([Sample(inspection=x, entity_id=u, town_id=entities[u].town_id)
                                                  for u in chosen])
            if Sample.objects.filter(inspection__year=year, entity_id__in=chosen).exclude(inspection=x).exists():
                raise InspectionError("同时有另一次抽取，部分主体已被抽中，请重新抽取")
            Through = Sample.inspectors.through
            Through.objects.bulk_create([Through(sample_id=s.pk, user_id=u.pk) for s in samples
                                         for u in choose_inspectors(rng, s.town_id, towns, county)])
    except IntegrityError as e:  # another draw took the same number at the same moment
        raise InspectionError("另一位同事正在抽取，请稍后重试") from e
    return x


def _documents_day_allowed(day: dt.date, today: dt.date, at_least: int, finish_by: dt.date) -> None:
    """A written check's day, set at the draw or put later: at least ``at_least`` days from
    ``today`` (time to find a payroll and a tax return), and not after the checks' last day (the
    inspectors read the documents before it). ``InspectionError`` otherwise."""
    earliest = today + dt.timedelta(days=at_least)
    if day < earliest:
        raise InspectionError(f"材料提交期限应给企业至少 {at_least} 天准备材料（{earliest:%Y-%m-%d} 或更晚）")
    if day > finish_by:
        raise InspectionError(f"材料提交期限不能晚于检查完成期限（{finish_by:%Y-%m-%d}）：检查人员要在完成前看到材料")


def _typed(value: str, what: str) -> str:
    return texts.typed(value, what, InspectionError)


def may_record(user, sample: Sample) -> bool:
    """The sample's own inspectors record its result, and the county's administrators (for an
    inspector who cannot)."""
    if scope.role_of(user) == scope.Role.ADMIN:
        return True
    return scope.can_write(user) and any(u.pk == user.pk for u in sample.inspectors.all())


def do_record(sample: Sample, result: str, found: str, checked_on: dt.date, by,
              now: dt.datetime | None = None) -> Sample:
    """The inspectors' result: what they found (at least four characters, except 未发现问题) and
    the day. A report found false, or an address found empty, lists the entity on the
    abnormal-operation list on that ground (an address by the same action as a visit's finding;
    a standing listing on the same ground is kept with the sample instead of a second); an order
    to correct is told to the entity. A result may be corrected until it has
    led to a listing (then the listing is annulled first, on the list's page)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    found = _typed(found, "检查情况")
    if result not in Result.values:
        raise InspectionError("请选择检查结果")
    if result != Result.OK and len(found) < texts.AT_LEAST:
        raise InspectionError("请写明检查情况（至少4个字），如：实地核查，年报从业人数与社保参保人数不符，已责令改正")
    if checked_on > today:
        raise InspectionError("检查日期不能晚于今天")
    with transaction.atomic():
        sample = Sample.objects.select_for_update().select_related("inspection", "entity").get(pk=sample.pk)
        if checked_on < timezone.localdate(sample.inspection.drawn_at):
            raise InspectionError("检查日期不能早于抽取日期")
        if sample.listing_id and Listing.objects.filter(pk=sample.listing_id, status__in=abnormal.STANDING).exists():
            raise InspectionError("已据此检查结果列入经营异常名录；如结果有误，请先在经营异常名录中撤销该列入决定")
        sample.result, sample.found, sample.checked_on = result, found[:500], checked_on
        sample.recorded_at, sample.recorded_by, sample.listing = now, by, None
        sample.correct_by = checked_on + dt.timedelta(days=CORRECT_WITHIN_DAYS) if result == Result.CORRECTED else None
        sample.statement, sample.stated_at, sample.corrected_on, sample.follow_up, sample.followed_by = "", None, None, "", None
        e, x = sample.entity, sample.inspection
        if result in Sample.LISTED:
            ground = Listing.Ground.UNREACHABLE if result == Result.UNREACHABLE else Listing.Ground.FALSE_INFO
            decide = abnormal.do_list_unreachable if result == Result.UNREACHABLE else abnormal.do_list_false
            standing = Listing.objects.filter(entity=e, ground=ground, status__in=abnormal.STANDING).first()
            try:
                sample.listing = standing or decide(e, checked_on, f"{x.year}年度年报抽查（{x.number}）：{found}",
                                                    by=by, now=now)
            except abnormal.ListingError as err:
                raise InspectionError(str(err)) from None
        elif result == Result.CORRECTED:
            by_day = sample.correct_by
            decency.tell_once(f"inspection-corrected:{sample.pk}", e.uscc, "inspection", e.phone, e.email,
                              f"【{reference.county()['county']}市场监管局】{e.name}：经{x.year}年度年报抽查（{x.number}），"
                              f"发现您单位公示的信息有误：{found}。请于{by_day.month}月{by_day.day}日前更正并重新公示，"
                              f"更正后可登录企服平台告知；逾期未更正的，将列入经营异常名录。" + abnormal.FREE,
                              f"抽查责令改正 {x.number}", now)
        sample.save()
    return sample


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _ordered(sample: Sample) -> Sample:
    """``sample`` locked, with its check and entity, if it stands ordered to correct and not
    followed up yet; ``InspectionError`` otherwise."""
    s = Sample.objects.select_for_update().select_related("inspection", "entity").get(pk=sample.pk)
    if s.result != Result.CORRECTED or s.correct_by is None:
        raise InspectionError("这条检查结果没有责令改正")
    if s.corrected_on or s.listing_id:
        raise InspectionError("已经复查（已确认改正或已列入经营异常名录）")
    return s


def do_state_correction(sample: Sample, statement: str, now: dt.datetime | None = None) -> Sample:
    """The entity says, in the portal, what it corrected (at least four characters), for its
    inspectors to check; it may say it again (the latest is kept) until they have."""
    now = now or timezone.now()
    statement = texts.written(statement, "更正情况", InspectionError, "请说明更正了哪些信息（至少4个字），如：已在公示系统更正2025年度年报的从业人数")
    with transaction.atomic():
        s = _ordered(sample)
        s.statement, s.stated_at = statement[:300], now
        s.save(update_fields=["statement", "stated_at"])
    return s


def do_follow_up(sample: Sample, corrected: bool, note: str, by, now: dt.datetime | None = None) -> Sample:
    """The inspectors' follow-up of an order to correct (复查), saying what they checked (at least
    four characters): corrected (the entity told), or, once the last day has passed, not, which
    lists the entity on the abnormal-operation list (未在责令的期限内公示有关企业信息,
    ``abnormal.actions.do_list_uncorrected``; the decision quotes the order and the follow-up).
    Before the last day an entity that has not corrected yet still has time."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    note = texts.written(note, "复查情况", InspectionError, "请写明复查的情况（至少4个字），如：已核对公示系统，2025年度年报从业人数已更正为28人")
    with transaction.atomic():
        s = _ordered(sample)
        e, x = s.entity, s.inspection
        if corrected:
            s.corrected_on = today
            decency.tell_once(f"inspection-corrected-done:{s.pk}", e.uscc, "inspection", e.phone, e.email,
                              f"【{reference.county()['county']}市场监管局】{e.name}：经复查，您单位已按{x.year}年度年报抽查"
                              f"（{x.number}）的要求更正公示的信息，此次检查已办结。" + abnormal.FREE,
                              f"抽查复查已改正 {x.number}", now)
        elif today <= s.correct_by:
            raise InspectionError(f"改正期限（{s.correct_by:%Y-%m-%d}）未满，企业仍可更正；期满后复查仍未更正的，才列入经营异常名录")
        else:
            try:
                s.listing = abnormal.do_list_uncorrected(
                    e, today, f"{x.year}年度年报抽查（{x.number}）责令于{_day(s.correct_by)}前更正：{s.found}；"
                              f"期满复查：{note}", by=by, now=now)
            except abnormal.ListingError as err:
                raise InspectionError(str(err)) from None
        s.follow_up, s.followed_by = note[:300], by
        s.save(update_fields=["corrected_on", "listing", "follow_up", "followed_by"])
    return s


def do_send_evidence(sample: Sample, files, note: str = "", by=None, now: dt.datetime | None = None) -> list[Evidence]:
    """Documents sent for ``sample`` (依据材料): by the firm in its portal (``by`` None) or by
    staff for it, with a word on what they are; images or PDFs (told by their content), 10 MB
    each, at most ``EVIDENCE_FILES`` for a check; while it waits for its check or an order to correct waits
    for its follow-up. All or none are kept."""
    now = now or timezone.now()
    note = _typed(note, "材料说明")
    with transaction.atomic():
        s = Sample.objects.select_for_update().get(pk=sample.pk)
        if not s.takes_evidence(timezone.localdate(now)):
            raise InspectionError("这次抽查已经办结，不再接收材料")
        try:
            checked = attachments.checked(files, s.evidence.count(), "每次抽查", EVIDENCE_FILES)
        except attachments.AttachmentError as e:
            raise InspectionError(str(e)) from None
        if not checked:
            raise InspectionError("请选择要上传的材料（图片或 PDF）")
        return [Evidence.objects.create(sample=s, name=name, content_type=media, size=len(data),
                                        sha256=attachments.store(data), note=note[:200], sent_at=now, sent_by=by)
                for name, media, data in checked]


def remind_corrections(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): an entity ordered to correct that has neither said it has
    corrected nor been followed up is reminded once, ``REMIND_DAYS_BEFORE`` days or fewer before
    its last day, of the day and of what follows it. Returns the messages queued."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = Sample.objects.filter(result=Result.CORRECTED, corrected_on__isnull=True, listing__isnull=True,
                                stated_at__isnull=True, entity__status="active", correct_by__gte=today,
                                correct_by__lte=today + dt.timedelta(days=REMIND_DAYS_BEFORE))
    county = reference.county()["county"]

    def body(s: Sample) -> str:
        e, x, last = s.entity, s.inspection, s.correct_by
        return (f"【{county}市场监管局】{e.name}：{x.year}年度年报抽查（{x.number}）责令更正的信息"
                f"（{s.found[:60]}），改正期限为{last.month}月{last.day}日。已更正的，请登录企服平台告知；"
                f"逾期未更正的，将列入经营异常名录。" + abnormal.FREE)

    return _remind_once(due, lambda s: f"inspection-correct-soon:{s.pk}", body, "抽查改正期限提醒", now)


def _remind_once(due: QuerySet[Sample], key, body, reason: str, now: dt.datetime) -> int:
    """Each of ``due`` told once, by text or email, ``body(sample)``, under the key
    ``key(sample)``; the number queued now."""
    due = list(due.select_related("entity", "inspection").order_by("pk"))
    told = decency.told(key(s) for s in due)
    n = 0
    for s in due:
        e = s.entity
        if key(s) not in told and decency.tell_once(key(s), e.uscc, "inspection", e.phone, e.email, body(s),
                                                 f"{reason} {s.inspection.number}", now):
            n += 1
    return n


def do_extend_documents(x: Inspection, to_day: dt.date, reason: str, by=None,
                        now: dt.datetime | None = None) -> Extension:
    """Put a written check's day later (延长材料提交期限: a holiday, the portal down, many firms
    asking for time), saying why (at least four characters): an administrator only, to a day
    after the current one, at least ``EXTEND_DAYS_AT_LEAST`` days from today and not after the
    checks' last day, while some entity drawn waits for its check. Never earlier: the firms were
    told a day and keep it. The worker tells the new day to those told the old one that have sent
    nothing, and the first notice (with the new day) to any not told yet (``tell_drawn``)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    reason = texts.written(reason, "延长理由", InspectionError, "请写明延长的理由（至少4个字），如：元旦假期，顺延材料提交期限")
    with transaction.atomic():
        x = Inspection.objects.select_for_update().get(pk=x.pk)
        if x.documents_by is None:
            raise InspectionError("这次抽查是实地检查，没有材料提交期限")
        if to_day <= x.documents_by:
            raise InspectionError(f"只能延长：新的期限应晚于现在的材料提交期限（{x.documents_by:%Y-%m-%d}），"
                                  f"已告知企业的期限不再提前")
        _documents_day_allowed(to_day, today, EXTEND_DAYS_AT_LEAST, x.finish_by)
        if not x.samples.filter(result="").exists():
            raise InspectionError("抽中的主体都已检查，无需延长")
        extension = Extension.objects.create(inspection=x, from_day=x.documents_by, to_day=to_day,
                                             reason=reason[:200], at=now, by=by)
        x.documents_by, x.extended_at, x.told_at = to_day, now, None
        x.save(update_fields=["documents_by", "extended_at", "told_at"])
    return extension


def do_extend_sample_documents(sample: Sample, to_day: dt.date, reason: str, by=None,
                               now: dt.datetime | None = None) -> Extension:
    """Give one entity drawn for a written check more time for its documents (it asked: its
    accountant away, its payroll with the tax office), saying why (at least four characters):
    its inspectors or an administrator (``may_record``, the view asks), to a day after the one it
    has now, after today and not after the checks' last day, while it waits for its check. The
    entity is told the new day at once, by text or email, under a key per sample and day (staff
    tell one no text or email reaches). A day later put for all that is later still counts for it
    too (``Sample.documents_due``)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    reason = texts.written(reason, "延长理由", InspectionError, "请写明延长的理由（至少4个字），如：企业来电，会计休假，申请延后一周提交")
    with transaction.atomic():
        s = _written_waiting(sample, "该主体已检查，无需延长")
        x, e, due = s.inspection, s.entity, s.documents_due
        if to_day <= due:
            raise InspectionError(f"只能延长：新的期限应晚于该主体现在的材料提交期限（{due:%Y-%m-%d}）")
        _documents_day_allowed(to_day, today, 1, x.finish_by)
        extension = Extension.objects.create(inspection=x, sample=s, from_day=due, to_day=to_day, reason=reason[:200],
                                             at=now, by=by)
        s.documents_by = to_day
        if s.more_time_waiting:  # the firm's own request is answered by it
            s.more_time_answer = f"同意延长至{_day(to_day)}"
            s.more_time_answered_at, s.more_time_answered_by = now, by
        s.save(update_fields=["documents_by", "more_time_answer", "more_time_answered_at", "more_time_answered_by"])
        decency.tell_once(f"inspection-extended-one:{s.pk}:{to_day.isoformat()}", e.uscc, "inspection", e.phone,
                          e.email, f"【{reference.county()['county']}市场监管局】{e.name}：{_about(x)}，您单位的材料提交"
                          f"期限延长至{to_day.month}月{to_day.day}日。请于该日前登录企服平台上传年报所填信息的依据材料；"
                          f"未上传的，检查人员将上门核查。" + CHECK_IS_FREE, f"抽查材料期限单独延长 {x.number}", now)
    return extension


def do_ask_more_time(sample: Sample, to_day: dt.date, why: str, now: dt.datetime | None = None) -> Sample:
    """The firm, in its portal, asks its inspectors for more time for a written check's documents
    (申请延长材料提交期限): to which day (after the one it has now, not after the checks' last day)
    and why (at least four characters), while it waits for its check. It may ask again (the
    latest is kept, and waits for an answer); its inspectors grant it
    (``do_extend_sample_documents``) or say why not (``do_refuse_more_time``)."""
    now = now or timezone.now()
    why = texts.written(why, "申请理由", InspectionError, "请写明需要延长的原因（至少4个字），如：会计休假，工资表下周才能打印")
    with transaction.atomic():
        s = _written_waiting(sample, "这次抽查已经检查，无需延长")
        x, due = s.inspection, s.documents_due
        if to_day <= due:
            raise InspectionError(f"申请的日期应晚于现在的材料提交期限（{_day(due)}）")
        if to_day > x.finish_by:
            raise InspectionError(f"申请的日期不能晚于检查完成期限（{_day(x.finish_by)}）：检查人员要在完成前看到材料")
        s.more_time_to, s.more_time_why, s.more_time_asked_at = to_day, why[:300], now
        s.more_time_answer, s.more_time_answered_at, s.more_time_answered_by = "", None, None
        s.save(update_fields=["more_time_to", "more_time_why", "more_time_asked_at", "more_time_answer",
                              "more_time_answered_at", "more_time_answered_by"])
    return s


def do_refuse_more_time(sample: Sample, note: str, by, now: dt.datetime | None = None) -> Sample:
    """Its inspectors (or an administrator) do not give the firm the time it asked for, saying why
    (at least four characters): the firm is told, by text or email, and keeps its day."""
    now = now or timezone.now()
    note = texts.written(note, "不予延长的理由", InspectionError, "请写明不予延长的理由（至少4个字），如：检查完成期限将至，请先上传已有的材料")
    with transaction.atomic():
        s = Sample.objects.select_for_update().select_related("inspection", "entity").get(pk=sample.pk)
        if not s.more_time_waiting:
            raise InspectionError("该主体没有待答复的延长申请")
        s.more_time_answer, s.more_time_answered_at, s.more_time_answered_by = f"不予延长：{note}"[:300], now, by
        s.save(update_fields=["more_time_answer", "more_time_answered_at", "more_time_answered_by"])
        e, x, due = s.entity, s.inspection, s.documents_due
        decency.tell_once(f"inspection-more-time-refused:{s.pk}:{s.more_time_asked_at:%Y%m%d%H%M%S}", e.uscc,
                          "inspection", e.phone, e.email,
                          f"【{reference.county()['county']}市场监管局】{e.name}：您单位申请延长{_about(x)}的材料提交期限，"
                          f"检查人员答复不予延长：{note[:60]}。请于{due.month}月{due.day}日前登录企服平台上传已有的依据材料；"
                          f"未上传的，检查人员将上门核查。" + CHECK_IS_FREE, f"抽查延长申请答复 {x.number}", now)
    return s


def _written_waiting(sample: Sample, checked: str) -> Sample:
    """``sample`` locked, with its check and entity, if its check is a written one and it waits
    for it; ``InspectionError`` otherwise (``checked``: what to say once it has been checked)."""
    s = Sample.objects.select_for_update().select_related("inspection", "entity").get(pk=sample.pk)
    if s.inspection.documents_by is None:
        raise InspectionError("这次抽查是实地检查，没有材料提交期限，请与检查人员联系")
    if s.result:
        raise InspectionError(checked)
    return s


def _about(x: Inspection) -> str:
    return f"{x.year}年度年报{x.get_kind_display()}（{x.number}）"


def tell_drawn(now: dt.datetime | None = None) -> int:
    """Every ten minutes (`qifu worker`): each entity drawn for a written check (``documents_by``
    not passed) is told once, by text or email, that it was drawn, what to send by when, and that
    the check is free (``Sample.notified_at``); once all of a check's entities have been gone
    through, the check is done with (``told_at``; at once, telling nobody, when its day has passed
    before it was reached). An entity checked already, or no longer trading, is not told; one with
    neither a mobile nor an email is left to its inspectors (``queries.untold``). After the day was
    put later (``do_extend_documents``), those told before that have sent nothing are told the new
    day, once for each day. Stored in the outbox a chunk at a time, each with its samples marked in
    one transaction, under a key per sample (and day): a run cut short tells nobody twice and the
    next goes on. Returns the messages stored."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    county = reference.county()["county"]
    n = 0
    for x in Inspection.objects.filter(documents_by__isnull=False, told_at__isnull=True).order_by("pk"):
        if x.documents_by < today:  # too late to ask (the worker was down): all left to the inspectors
            Inspection.objects.filter(pk=x.pk).update(told_at=now)
            continue
        by_day = x.documents_by
        waiting = x.samples.filter(result="", entity__status="active")
        n += _tell_chunks(waiting.filter(notified_at__isnull=True), "inspection-drawn:{}", f"抽查告知 {x.number}",
                          _drawn_text, county, now)
        if x.extended_at:  # not those given a day of their own later still: nothing has changed for them
            owing = waiting.filter(queries.sent_nothing(), notified_at__lt=x.extended_at).exclude(documents_by__gte=by_day)
            n += _tell_chunks(owing, f"inspection-extended:{{}}:{by_day.isoformat()}", f"抽查材料期限延长 {x.number}",
                              _extended_text, county, now)
        Inspection.objects.filter(pk=x.pk).update(told_at=now)
    return n


def _drawn_text(s: Sample) -> str:
    """The first notice of a written check: its own day where it was given more time before it
    was told."""
    day = s.documents_due
    return (f"您单位被抽中接受{_about(s.inspection)}。请于{day.month}月{day.day}日前登录企服平台上传年报所填信息的"
            f"依据材料（如工资表、社保缴费记录、财务报表、纳税申报表），检查人员据此核查，必要时上门。")


def _extended_text(s: Sample) -> str:
    """The notice of the check's day put later for all."""
    day = s.inspection.documents_by
    return (f"{_about(s.inspection)}的材料提交期限延长至{day.month}月{day.day}日。请于该日前登录企服平台上传"
            f"年报所填信息的依据材料；未上传的，检查人员将上门核查。")


def _tell_chunks(todo: QuerySet[Sample], key: str, reason: str, text, county: str, now: dt.datetime) -> int:
    """Each of ``todo`` that a text or an email reaches told ``text(sample)`` (after the bureau's and the
    entity's names; that the check is free after it) under ``key`` (its ``{}`` the sample),
    ``TELL_CHUNK`` at a time, each chunk stored with its samples marked told (``notified_at``) in
    one transaction. The number stored."""
    today = timezone.localdate(now)
    todo = todo.select_related("entity", "inspection").order_by("pk")
    n, last = 0, 0
    while chunk := list(todo.filter(pk__gt=last)[:TELL_CHUNK]):
        last = chunk[-1].pk
        samples = {str(s.pk): s for s in chunk}
        reach = decency.in_writing(pl.DataFrame([(k, s.entity.phone, s.entity.email) for k, s in samples.items()],
                                                schema=dict.fromkeys(("sample", "phone", "email"), pl.String),
                                                orient="row"))
        messages = [OutboxMessage(key=key.format(k), entity_id=samples[k].entity_id, purpose="inspection",
                                  channel=channel, recipient=recipient, reason=reason, planned_for=today,
                                  next_attempt_at=now,
                                  body=f"【{county}市场监管局】{samples[k].entity.name}：{text(samples[k])}" + CHECK_IS_FREE)
                    for k, channel, recipient in reach.select("sample", "channel", "recipient").iter_rows()]
        with transaction.atomic():
            OutboxMessage.objects.bulk_create(messages, batch_size=TELL_CHUNK, ignore_conflicts=True)
            Sample.objects.filter(pk__in=[int(k) for k in reach["sample"]]).update(notified_at=now)
        n += len(messages)
    return n


def remind_documents(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): an entity drawn for a written check that has sent nothing and
    is not checked yet is reminded once, ``REMIND_DAYS_BEFORE`` days or fewer before the day its
    documents are due (its own, ``Sample.documents_due``; and again before a day put later).
    Returns the messages queued."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = Sample.objects.annotate(due=queries.documents_due()).filter(
        queries.sent_nothing(), entity__status="active", due__gte=today,
        due__lte=today + dt.timedelta(days=REMIND_DAYS_BEFORE))
    county = reference.county()["county"]

    def body(s: Sample) -> str:
        last = s.documents_due
        return (f"【{county}市场监管局】{s.entity.name}：{_about(s.inspection)}为书面检查，请于{last.month}月{last.day}日前"
                f"登录企服平台上传年报所填信息的依据材料；未上传的，检查人员将上门核查。" + CHECK_IS_FREE)

    def key(s: Sample) -> str:  # once for each day: a day put later is reminded of again
        extended = s.documents_extended
        return f"inspection-documents-soon:{s.pk}" + (f":{s.documents_due.isoformat()}" if extended else "")

    return _remind_once(due, key, body, "抽查材料提交提醒", now)


# the columns of the check's workbook (sheet 抽查对象) that the results are read back from
RESULT_COLUMNS = {"统一社会信用代码": "uscc", "检查结果": "result", "检查情况": "found", "检查日期": "on"}


def read_results(path) -> list[dict]:
    """The check's workbook as the inspectors filled it in (XLSX, or CSV in any of the bureau's
    encodings): each row's credit code, result, what was found and the day as typed, and its
    line (``__row``)."""
    from qifu.engine.errors import FileProblem
    from qifu.engine.reading import read_filled

    try:
        return read_filled(path, RESULT_COLUMNS, "抽查对象表")
    except FileProblem as e:
        raise InspectionError(str(e)) from None


class _Undone(Exception):
    def __init__(self, problem: tuple[int, str, str, str]):
        self.problem = problem


def do_record_results(rows: list[dict], inspection: Inspection, by, now: dt.datetime | None = None
                      ) -> tuple[int, int, list[tuple[int, str, str, str]]]:
    """The check's workbook filled in, all or nothing: each row with a result is recorded as
    ``do_record`` records one (a listing where the result calls for it, the entity told); a row
    with no result, day or words is not checked yet and left. Only the samples ``by`` may record
    (their inspector, or an administrator). Returns (recorded, unchanged, problems): problems
    are (row, column, value, reason), and with any nothing is stored. A row as recorded already
    is unchanged."""
    from qifu.engine.contract import Field, T
    from qifu.engine.validate import parse_values

    now = now or timezone.now()
    today = timezone.localdate(now)
    drawn_on = timezone.localdate(inspection.drawn_at)
    fields = {"result": Field("result", "检查结果", T.ENUM, choices=tuple(Result.choices)),
              "on": Field("on", "检查日期", T.DATE)}
    samples = {s.entity_id: s for s in samples_for(by).filter(inspection=inspection).prefetch_related("inspectors")}
    problems: list[tuple[int, str, str, str]] = []
    todo: list[tuple[int, Sample, str, str, dt.date]] = []
    same = 0
    seen: dict[str, int] = {}
    for r in rows:
        row, uscc = r["__row"], (r["uscc"] or "").strip()
        result, found, on = ((r[k] or "").strip() for k in ("result", "found", "on"))
        if not (result or found or on):
            continue
        if uscc in seen:
            problems.append((row, "统一社会信用代码", uscc, f"与第 {seen[uscc]} 行重复"))
            continue
        seen[uscc] = row
        s = samples.get(uscc)
        if s is None:
            problems.append((row, "统一社会信用代码", uscc, "不是本次抽查的对象，或不在您的办理范围"))
            continue
        values, errors = parse_values({"result": result, "on": on}, fields)
        for name, label in (("result", "检查结果"), ("on", "检查日期")):
            if name in errors:
                problems.append((row, label, r[name], errors[name]))
            elif values[name] is None:
                problems.append((row, label, "", "已填了检查情况的行，这一列不能为空"))
        if texts.problem(found):
            problems.append((row, "检查情况", found[:40], texts.problem(found)))
        elif values.get("result") not in (None, Result.OK) and len(found) < texts.AT_LEAST:
            problems.append((row, "检查情况", found, "请写明检查情况（至少4个字）"))
        day = values.get("on")
        if day is not None and day > today:
            problems.append((row, "检查日期", on, "检查日期不能晚于今天"))
        elif day is not None and day < drawn_on:
            problems.append((row, "检查日期", on, f"检查日期不能早于抽取日期（{drawn_on:%Y-%m-%d}）"))
        if not may_record(by, s):
            problems.append((row, "统一社会信用代码", uscc, "您不是该主体的检查人员"))
        if problems and problems[-1][0] == row or values.get("result") is None or day is None:
            continue
        if (s.result, s.found, s.checked_on) == (values["result"], found[:500], day):
            same += 1
        else:
            todo.append((row, s, values["result"], found, day))
    if problems:
        return 0, 0, sorted(problems)
    try:
        with transaction.atomic():
            for row, s, result, found, day in todo:
                try:
                    do_record(s, result, found, day, by, now)
                except InspectionError as e:
                    raise _Undone((row, "检查结果", Result(result).label, str(e))) from None
    except _Undone as e:
        return 0, 0, [e.problem]
    return len(todo), same, []


def samples_for(user, qs: QuerySet[Sample] | None = None) -> QuerySet[Sample]:
    """The samples ``user`` sees: the county's, or an officer's own township's."""
    return scope.filter_by_town(Sample.objects.all() if qs is None else qs, user)


def assigned_to(user, qs: QuerySet[Sample]) -> QuerySet[Sample]:
    """Those ``user`` is one of the inspectors of, not checked yet."""
    return qs.filter(inspectors=user, result="")
