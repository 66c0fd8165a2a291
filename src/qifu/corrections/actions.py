"""Named actions of the correction loop: notify, explain, review; and the correction rate."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass

import polars as pl
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from qifu import text
from qifu.checks.models import Finding
from qifu.corrections.models import CorrectionNotice, Explanation
from qifu.engine.season import deadline
from qifu.reminders import decency
from qifu.reminders.models import ContactTask, OutboxMessage
from qifu.reports.models import AnnualReport

NOTIFY_SEVERITIES = ("block", "high", "medium")
HANDLED = ("resolved", "confirmed")


def needs_notice(severities: list[str]) -> bool:
    """A block or high finding, or two or more medium ones."""
    return any(s in ("block", "high") for s in severities) or severities.count("medium") >= 2


def notice_text(entity, year: int, findings: list[Finding], due: dt.date, today: dt.date | None = None) -> str:
    """The correction notice. Until ``due`` the filer corrects the report itself; after it the
    self-service correction is closed (a late filing checked in August, say), so the notice
    says where a correction is asked for instead of naming a day that has passed."""
    rep = f"（{entity.legal_rep}）" if entity.legal_rep else ""
    lines = "；".join(f"{i}. {f.message}" for i, f in enumerate(findings[:3], 1))
    more = f"等{len(findings)}处" if len(findings) > 3 else f"{len(findings)}处"
    if today is not None and today > due:
        how = (f"年报自助更正已于{due.month}月{due.day}日截止，确需更正的，请向所在地市场监管部门申请；"
               f"可登录企服平台，用统一社会信用代码和验证码查看，如数值无误，可在平台说明理由。")
    else:
        how = (f"请于{due.month}月{due.day}日前登录企服平台，用统一社会信用代码和验证码查看并更正；"
               f"如数值无误，可在平台说明理由。")
    return f"【企服】{entity.name}{rep}：您单位{year}年度年报经核查有{more}需要核实：{lines}。{how}年报不收费，工作人员不会索要验证码。"


@dataclass
class NotifyResult:
    notices: int
    findings: int
    by_channel: dict[str, int]
    deferred: int = 0  # entities contacted too recently or too often this season: notified on a later day


def _contacts(entities: dict, reports: dict, today: dt.date) -> pl.DataFrame:
    """Per entity to notify: whether the rules of decency allow a contact today, and the channel
    and recipient (the contacts as filed first, then as registered)."""
    usccs = list(entities)
    rep = [reports.get(u) for u in usccs]
    frame = pl.DataFrame({
        "uscc": usccs, "channel": ["sms"] * len(usccs),
        "phone": [r.phone if r else None for r in rep], "alt_phone": [entities[u].phone for u in usccs],
        "email": [r.email if r else None for r in rep], "alt_email": [entities[u].email for u in usccs],
    }, schema=dict.fromkeys(("uscc", "channel", "phone", "alt_phone", "email", "alt_email"), pl.Utf8))
    return decency.resolve_channel(decency.flag(frame, decency.history_stats(today, usccs), today))


def notify(year: int, today: dt.date) -> NotifyResult:
    """Bundle each entity's open, not yet notified findings into one notice through the outbox.

    Idempotent per day: a second call the same day finds nothing new to notify.
    """
    open_new = (Finding.objects.filter(report_year=year, status="open", severity__in=NOTIFY_SEVERITIES)
                .exclude(notices__isnull=False).select_related("entity", "entity__town").order_by("entity_id", "rule_key"))
    by_entity: dict[str, list[Finding]] = defaultdict(list)
    for f in open_new:
        by_entity[f.entity_id].append(f)
    due = deadline(year)  # corrections are due by the end of the filing season
    now = timezone.now()
    channels: Counter = Counter()
    n_notices = n_findings = deferred = 0
    by_entity = {u: found for u, found in by_entity.items() if needs_notice([f.severity for f in found])}
    reports = {r.entity_id: r for r in AnnualReport.objects.filter(
        report_year=year, is_current=True, entity_id__in=list(by_entity))}
    contacts = _contacts({u: found[0].entity for u, found in by_entity.items()}, reports, today) if by_entity else None
    for row in contacts.iter_rows(named=True) if contacts is not None else ():
        uscc, channel, recipient = row["uscc"], row["channel"], row["recipient"]
        if not (row["spaced"] and row["capped"]):
            deferred += 1  # the findings stay unnotified; a later day's notify takes them
            continue
        found = by_entity[uscc]
        entity = found[0].entity
        order = {"block": 0, "high": 1, "medium": 2}
        found.sort(key=lambda f: (order[f.severity], f.rule_key))
        with transaction.atomic():
            notice, created = CorrectionNotice.objects.get_or_create(
                entity=entity, report_year=year, issued_on=today,
                defaults={"deadline": due, "channel": channel},
            )
            if created:
                message = OutboxMessage.objects.create(
                    key=f"correction:{uscc}:{year}:{today.isoformat()}", entity=entity, purpose="correction",
                    channel=channel, recipient=recipient, body=notice_text(entity, year, found, due, today),
                    reason=f"校验发现 {len(found)} 个需核实的问题（{'、'.join(sorted({f.rule_id for f in found}))}）",
                    planned_for=today, next_attempt_at=now,
                    status=OutboxMessage.Status.TASK if channel in ("call", "visit") else OutboxMessage.Status.PENDING,
                )
                notice.message = message
                notice.save(update_fields=["message"])
                if channel in ("call", "visit"):
                    ContactTask.objects.create(message=message, entity=entity, channel=channel,
                                               due_on=today)
                n_notices += 1
                channels[channel] += 1
            notice.findings.add(*found)
            n_findings += len(found)
    return NotifyResult(n_notices, n_findings, dict(channels), deferred)


def explain(finding: Finding, reason: str) -> Explanation:
    """The enterprise confirms the value with a reason; the finding counts as handled until
    staff reject the explanation."""
    reason = text.written(reason, "理由", ValueError, "请写明数值无误的理由（至少4个字）")
    if finding.status != "open":
        raise ValueError("这个问题已经处理，无需再说明")
    with transaction.atomic():
        item = Explanation.objects.create(finding=finding, reason=reason[:1000])
        Finding.objects.filter(pk=finding.pk).update(status="confirmed")
    return item


def review(explanation: Explanation, user, accept: bool, note: str = "") -> None:
    """Accept or reject a pending explanation, once: a second review (a double click, two staff
    at once) is refused, so the first decision and its reviewer stand."""
    try:
        note = text.clean(note, 500)
    except ValueError as e:
        raise ValueError(f"复核意见{e}") from None
    with transaction.atomic():
        explanation = Explanation.objects.select_for_update().get(pk=explanation.pk)
        if explanation.status != Explanation.Status.PENDING:
            raise ValueError(f"这条说明已由{explanation.reviewed_by}复核（{explanation.get_status_display()}），不能再次复核")
        explanation.status = Explanation.Status.ACCEPTED if accept else Explanation.Status.REJECTED
        explanation.reviewed_by = user
        explanation.reviewed_at = timezone.now()
        explanation.review_note = note[:500]
        explanation.save()
        if not accept:
            Finding.objects.filter(pk=explanation.finding_id, status="confirmed").update(status="open")


@dataclass
class Rate:
    label: str
    notified: int
    handled: int

    @property
    def rate(self) -> float:
        return self.handled / self.notified if self.notified else 0.0

    @property
    def pct(self) -> float:
        return 100 * self.rate


def rates(year: int, findings_qs=None) -> dict[str, list[Rate]]:
    """Correction rate = findings resolved by a correction or explained ÷ findings notified,
    overall and by rule, township and channel."""
    qs = (findings_qs if findings_qs is not None else Finding.objects.all()).filter(
        report_year=year, notices__isnull=False)
    handled = Q(status__in=HANDLED)
    out: dict[str, list[Rate]] = {}
    for key, label in (("rule", "rule_id"), ("town", "entity__town__name"), ("channel", "notices__channel")):
        rows = qs.values(label).annotate(n=Count("id", distinct=True), h=Count("id", filter=handled, distinct=True))
        out[key] = sorted((Rate(r[label] or "", r["n"], r["h"]) for r in rows), key=lambda r: (-r.notified, r.label))
    total = qs.aggregate(n=Count("id", distinct=True), h=Count("id", filter=handled, distinct=True))
    out["overall"] = [Rate("合计", total["n"], total["h"])]
    return out
