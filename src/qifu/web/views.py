"""The staff back office: dashboard, entities, entity page, tasks, the correction loop."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import ExtractMonth
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from qifu import backup, caching, text
from qifu.abnormal import actions as abnormal_actions
from qifu.abnormal import queries as abnormal_queries
from qifu.abnormal.models import Listing, SetAside
from qifu.accounts import masking, scope
from qifu.accounts.actions import must_change_password
from qifu.accounts.decorators import signed_in, staff_required
from qifu.accounts.models import AuditEvent
from qifu.checks.models import Finding
from qifu.corrections import actions as corrections
from qifu.corrections.models import CorrectionNotice, Explanation
from qifu.engine import season
from qifu.engine.contract import PERSONAL_FIELDS, REPORTS
from qifu.experts import queries as expert_queries
from qifu.experts.models import Cooperation, Need, Visit
from qifu.imports.models import ImportRun
from qifu.inspections import actions as inspection_actions
from qifu.inspections import queries as inspection_queries
from qifu.labs import queries as lab_queries
from qifu.labs.models import Booking, SampleOrder, TestBatch, Voucher, Waiting
from qifu.land import queries as land_queries
from qifu.land.models import Parcel, Remediation
from qifu.policies import queries as policy_queries
from qifu.policies.models import Application, Match
from qifu.projects import queries as project_queries
from qifu.projects.models import Project
from qifu.registry.models import Entity, Note, Township
from qifu.reminders import actions as reminder_actions
from qifu.reminders.models import ContactTask, OutboxMessage, ReminderRecord
from qifu.reports.models import AnnualReport
from qifu.service_requests import queries as request_queries
from qifu.service_requests.models import ServiceRequest
from qifu.web import downloads, entity_file, queries, stats
from qifu.web.downloads import audited_list, audited_xlsx

LABELS = {f.name: f.label for f in REPORTS.fields}


@staff_required
def home(request):
    town = scope.town_of(request.user)
    town_name = Township.objects.get(code=town).name if town else None
    year = queries.latest_report_year()
    con = stats.connect()
    ctx = {"counts": stats.entity_counts(con, town_name), "year": year, "imports": ImportRun.objects.all()[:5],
           "town_name": town_name or "全市",
           "requests": request_queries.panel(scope.filter_requests(ServiceRequest.objects.all(), request.user))}
    if year:
        progress = stats.progress(con, year, town_name)
        towns = sorted(progress["town"], key=lambda t: t.rate)
        due, filed = sum(t.due for t in towns), sum(t.filed for t in towns)
        curve, raw = stats.season_curve(con, year, town_name)
        reminders = stats.reminders(con, year, town_name, *raw[year])
        findings = queries.findings_summary(year, town)
        charts = {
            "curve": curve,
            "towns": _bars(towns),
            "types": _bars(progress["type"]),
            "sections": _bars(sorted(progress["section"], key=lambda p: -p.due)[:12]),
            "rules": {"labels": [r["rule_id"] for r in findings["by_rule"]], "values": [r["n"] for r in findings["by_rule"]]},
            "channels": {"labels": [dict(OutboxMessage._meta.get_field("channel").choices).get(k, k)
                                    for k in reminders["by_channel"]], "values": list(reminders["by_channel"].values())},
        }
        ctx.update(due=due, filed=filed, rate_pct=100 * filed / due if due else 0,
                   towns=towns, overall=findings["rate"], findings=findings,
                   severity_rows=_severity_rows(findings["by_severity"]), reminders=reminders,
                   proof=_proof(season_summary(year + 1, town)),
                   deadline=season.deadline(year), charts=charts)
    con.close()
    ctx["abnormal"] = _abnormal_panel(request)
    ctx["land"] = _land_panel(request)
    ctx["policies"] = _policies_panel(request)
    ctx["labs"] = _labs_panel(request)
    ctx["experts"] = _experts_panel(request)
    ctx["projects"] = _projects_panel(request)
    ctx["inspections"] = _inspections_panel(request)
    if scope.role_of(request.user) == scope.Role.ADMIN:  # whether the county's data is being backed up
        ctx["backup"] = backup.status()
        # messages that may or may not have gone out, for the administrator to settle in Django admin
        ctx["unknown_messages"] = OutboxMessage.objects.filter(status=OutboxMessage.Status.UNKNOWN).count()
    return render(request, "web/home.html", ctx)


# who is due to be listed, for the dashboard, kept five minutes per year and township: it reads
# the registry and the year's reports (half a second for a county of 240,000); the list's own
# page counts afresh, and a decision made there forgets it (``forget_due``)
_due_cache = caching.Expiring(ttl=300, limit=100)


def forget_due() -> None:
    _due_cache.clear()


def can_act_on_listings(user) -> bool:
    """Who decides listings and removals: the bureau's administrators and township officers
    with write rights (leaders read; departments see none)."""
    return scope.can_write(user) and scope.role_of(user) in (scope.Role.ADMIN, scope.Role.OFFICER)


def _abnormal_panel(request) -> dict | None:
    """The abnormal-operation list: who is due to be listed for the closed season, who is on the
    list, applications waiting, entities that filed late but have not applied, three years near."""
    year = abnormal_actions.closed_year()
    listings = scope.filter_by_town(Listing.objects.all(), request.user)
    due = _due_cache.get((year, scope.role_of(request.user), scope.town_of(request.user)),
                         lambda: scope.filter_by_town(abnormal_actions.candidates(year), request.user).count())
    unreachable_due = len(abnormal_actions.unreachable_due(entities=scope.filter_by_town(Entity.objects.all(),
                                                                                         request.user)))
    if not due and not unreachable_due and not listings.exists():
        return None
    decide_by = abnormal_actions.decide_by(year)
    m = abnormal_queries.measures(listings)
    return {"year": year, "due": due, "unreachable_due": unreachable_due,
            "m": m, "decide_by": decide_by, "charts": {"abnormal-years": m["chart"] | {"integer": True}},
            "late": bool(due) and timezone.localdate() > decide_by,
            "unserved": abnormal_queries.unreached(listings.filter(report_year=year)).count()}


def _inspections_panel(request) -> dict | None:
    """The spot checks: how many drawn and checked, waiting (for the signed-in inspector too),
    past their last day, listed because of a result, orders to correct waiting for the
    signed-in inspector's follow-up, and firms waiting for the inspector's answer to their request
    for more time."""
    samples = inspection_actions.samples_for(request.user)
    if not samples.exists():
        return None
    due = inspection_queries.follow_up_due(timezone.localdate())
    m = inspection_queries.measures(samples)
    return {"m": m, "charts": {"inspection-results": m["chart"] | {"type": "doughnut"}},
            "mine": inspection_actions.assigned_to(request.user, samples).count(),
            "follow_up": samples.filter(due, inspectors=request.user).count(),
            "more_time": samples.filter(inspection_queries.more_time_waiting(), inspectors=request.user).count()}


def _projects_panel(request) -> dict | None:
    """Phased acceptance: days to first use against a single final acceptance."""
    projects = scope.filter_projects(Project.objects.all(), request.user)
    if not projects.exists():
        return None
    m = project_queries.measures(projects)
    return {"m": m, "charts": {"project-gains": m["chart"]}}


def _experts_panel(request) -> dict | None:
    """Expert partners: needs by status and visits by month of this year."""
    needs = scope.filter_by_town(Need.objects.all(), request.user)
    if not needs.exists():
        return None
    m = expert_queries.measures(needs, scope.filter_by_town(Visit.objects.all(), request.user),
                                scope.filter_by_town(Cooperation.objects.all(), request.user))
    asked = needs.filter(achievement__isnull=False)
    return {"m": m, "asked": asked.count(), "asked_open": asked.filter(status=Need.Status.OPEN).count(),
            "charts": {"expert-visits": {"labels": [f"{k}月" for k in range(1, 13)], "values": m["months"], "integer": True,
                                         "label": f"{m['year']} 年走访次数"}}}


def _labs_panel(request) -> dict | None:
    """Shared labs: test batches of the reader's firms by month of this year and last."""
    batches = scope.filter_by_town(TestBatch.objects.all(), request.user)
    bookings = scope.filter_by_town(Booking.objects.all(), request.user)
    orders = scope.filter_by_town(SampleOrder.objects.all(), request.user)
    if not bookings.exists() and not orders.exists():
        return None
    year = timezone.localdate().year
    vouchers = scope.filter_by_town(Voucher.objects.filter(year=year), request.user, "entity__town")
    m = lab_queries.measures(bookings, batches, vouchers, scope.filter_by_town(Waiting.objects.all(), request.user), orders)
    months = dict(batches.filter(tested_on__year=year).annotate(month=ExtractMonth("tested_on")).values_list("month")
                  .annotate(n=Count("id")))
    return {"m": m, "year": year, "charts": {"lab-months": {
        "labels": [f"{k}月" for k in range(1, 13)], "values": [months.get(k, 0) for k in range(1, 13)], "integer": True,
        "label": f"{year} 年检测批次"}}}


def _policies_panel(request) -> dict | None:
    """Policy money by township: what the firms are owed and what has arrived; the applications
    waiting for review."""
    matches = scope.filter_policy_matches(Match.objects.all(), request.user)
    rows = policy_queries.by_town(matches)
    if not rows:
        return None
    return {
        "owed": round(sum(r["owed"] for r in rows), 2), "paid": round(sum(r["paid"] for r in rows), 2),
        "waiting": sum(r["waiting"] for r in rows),
        "to_review": Application.objects.filter(match__in=matches, status=Application.Status.SUBMITTED).count(),
        "charts": {"policy-towns": {"labels": [r["town"] for r in rows], "horizontal": True, "series": [
            {"label": "应享（万元）", "values": [round(r["owed"], 2) for r in rows]},
            {"label": "已到账（万元）", "values": [round(r["paid"], 2) for r in rows]}]}},
    }


def _land_panel(request) -> dict | None:
    """The latest land evaluation's classes and the low-efficiency land by township."""
    years = land_queries.years()
    if not years:
        return None
    evaluation = land_queries.latest(years[0])
    results = scope.filter_by_town(evaluation.results.all(), request.user, "entity__town")
    dist = land_queries.distribution(evaluation, results)
    by_town = land_queries.remediation_by_town(scope.filter_by_town(Remediation.objects.all(), request.user))
    return {
        "year": evaluation.year, "status": evaluation.get_status_display(),
        "flagged": round(sum(t["flagged"] for t in by_town), 1), "done": round(sum(t["done"] for t in by_town), 1),
        "charts": {
            "land-classes": {"type": "doughnut", "labels": dist["keys"], "values": [dist["totals"][k] for k in dist["keys"]]},
            "land-towns": {"labels": [t["name"] for t in by_town], "horizontal": True, "series": [
                {"label": "认定（亩）", "values": [t["flagged"] for t in by_town]},
                {"label": "已整治（亩）", "values": [t["done"] for t in by_town]}]},
        },
    }


def _bars(items) -> dict:
    return {"labels": [p.name for p in items], "values": [round(100 * p.rate, 1) for p in items],
            "filed": [p.filed for p in items], "due": [p.due for p in items]}


def _severity_rows(by_sev: dict) -> list[dict]:
    labels = dict(Finding._meta.get_field("severity").choices)
    return [{"label": labels[s], "open": by_sev.get((s, "open"), 0), "resolved": by_sev.get((s, "resolved"), 0),
             "confirmed": by_sev.get((s, "confirmed"), 0)} for s in labels]


SORTS = {"name": "name", "uscc": "uscc", "established": "established_on", "-established": "-established_on",
         "town": "town__code"}


def _entity_list(request):
    """The filtered, sorted queryset of the entity list (and its export)."""
    qs = scope.entities(request.user).select_related("town")
    year = queries.latest_report_year()
    f = {k: text.CONTROL.sub("", request.GET.get(k, "")).strip()
         for k in ("q", "town", "type", "status", "filed", "findings", "abnormal", "sort")}
    if f["q"]:
        qs = qs.filter(uscc__startswith=f["q"].upper()) if f["q"][:2].isalnum() and f["q"].isascii() else qs.filter(name__contains=f["q"])
    if f["town"] and not scope.town_of(request.user):
        qs = qs.filter(town_id=f["town"])
    if f["type"]:
        qs = qs.filter(entity_type=f["type"])
    if f["status"]:
        qs = qs.filter(status=f["status"])
    if year and f["filed"] in ("yes", "no"):
        filed = Exists(AnnualReport.objects.filter(entity=OuterRef("pk"), report_year=year, is_current=True))
        qs = qs.filter(filed) if f["filed"] == "yes" else qs.exclude(filed)
    if year and f["findings"] == "open":
        qs = qs.filter(Exists(Finding.objects.filter(entity=OuterRef("pk"), report_year=year, status="open")))
    if f["abnormal"] == "standing":  # on the abnormal-operation list now, for any year
        qs = qs.filter(Exists(Listing.objects.filter(entity=OuterRef("pk"), status__in=abnormal_actions.STANDING)))
    qs = qs.order_by(SORTS.get(f["sort"], "uscc"), "uscc")
    return qs, f, year


@staff_required
def entities(request):
    qs, f, year = _entity_list(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    rows = [{"e": e, "rep": masking.name(e.legal_rep), "phone": masking.phone(e.phone)} for e in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/entities.html", {
        "page": page, "rows": rows, "f": f, "year": year, "query": query.urlencode(),
        "long_list": page.paginator.count > downloads.LONG_LIST,
        "towns": [] if scope.town_of(request.user) else Township.objects.all(),
        "types": Entity._meta.get_field("entity_type").choices, "statuses": Entity._meta.get_field("status").choices,
    })


@staff_required
def entities_export(request, fmt: str = "xlsx"):
    """The same list as an Excel workbook, or as CSV (``fmt``), which for a whole county is a
    matter of seconds instead of half a minute (personal data masked, the export audited)."""
    qs, f, year = _entity_list(request)
    header = ["统一社会信用代码", "名称", "主体类型", "所属镇街", "登记状态", "成立日期", "法定代表人", "联系电话",
              f"{year}年度年报" if year else "年报"]
    filed = set()
    if year:
        filed = set(AnnualReport.objects.filter(report_year=year, is_current=True, entity__in=qs).values_list("entity_id", flat=True))
    # plain rows, not model instances: a whole county is 240,000 of them
    types, statuses = dict(Entity._meta.get_field("entity_type").choices), dict(Entity._meta.get_field("status").choices)
    rows = ([uscc, name, types.get(kind, kind), town, statuses.get(status, status), established, masking.name(rep),
             masking.phone(phone), "已报" if uscc in filed else "未报"]
            for uscc, name, kind, town, status, established, rep, phone in qs.values_list(
                "uscc", "name", "entity_type", "town__name", "status", "established_on", "legal_rep", "phone",
            ).iterator(chunk_size=2000))
    filters = json.dumps({k: v for k, v in f.items() if v}, ensure_ascii=False)
    return audited_list(request, fmt, "市场主体", header, rows, "entities",
                        lambda n, kind: f"市场主体 {n} 行{kind}；筛选 {filters}")


@dataclass
class Revision:
    report: AnnualReport
    changes: list[tuple[str, object, object]]


def _revisions(entity, reveal: bool) -> dict[int, list[Revision]]:
    """Each year's revisions and what each changed; phone numbers and emails masked unless
    the viewer asked to see them (audited)."""
    out: dict[int, list[Revision]] = {}
    names = [f.name for f in REPORTS.fields if f.name not in ("uscc", "report_year")]

    def shown(name, v):
        return masking.value(v) if name in PERSONAL_FIELDS and not reveal and v else v

    for rep in AnnualReport.objects.filter(entity=entity).order_by("-report_year", "revision"):
        items = out.setdefault(rep.report_year, [])
        prev = items[-1].report if items else None
        changes = [] if prev is None else [
            (LABELS[n], shown(n, getattr(prev, n)), shown(n, getattr(rep, n)))
            for n in names if n != "filed_at" and getattr(prev, n) != getattr(rep, n)
        ]
        items.append(Revision(rep, changes))
    return out


def _timeline(entity) -> list[dict]:
    events = []
    for r in ReminderRecord.objects.filter(entity=entity):
        events.append({"at": r.sent_at, "kind": f"{r.get_purpose_display()}提醒", "what": f"{r.get_channel_display()} · {r.get_status_display()}"})
    # a sign-in code is no contact; a message to an expert or to a department is filed under the
    # firm it is about but is not to it
    for m in (OutboxMessage.objects.filter(entity=entity, addressee=OutboxMessage.Addressee.ENTITY)
              .exclude(purpose="signin").exclude(status="sent")):
        events.append({"at": m.sent_at or m.created_at, "kind": f"{m.get_purpose_display()}（{m.get_status_display()}）",
                       "what": f"{m.get_channel_display()} · {m.reason}"})
    for n in CorrectionNotice.objects.filter(entity=entity):
        events.append({"at": timezone.make_aware(datetime.combine(n.issued_on, datetime.min.time())),
                       "kind": "更正通知", "what": f"{n.get_channel_display()} · 截止 {n.deadline:%Y-%m-%d}"})
    return sorted(events, key=lambda e: e["at"], reverse=True)


@staff_required
def entity(request, uscc: str):
    e = scope.entity_or_403(request.user, uscc)
    # the file (一企一档) as a workbook: masked as any list, whatever the page revealed
    as_file = request.GET.get("format") == "xlsx"
    reveal = not as_file and request.GET.get("reveal") == "1" and scope.can_see_contacts(request.user)
    if reveal:
        scope.audit(request, AuditEvent.Action.VIEW_CONTACT, uscc=e.uscc, detail="主体页：法定代表人、电话、邮箱")
    contact = {
        "rep": e.legal_rep if reveal else masking.name(e.legal_rep),
        "phone": e.phone if reveal else masking.phone(e.phone),
        "email": e.email if reveal else masking.email(e.email),
    }
    findings = list(Finding.objects.filter(entity=e).prefetch_related("explanations")
                    .order_by("-report_year", "status", "rule_id"))
    known = queries.personal_values([e.uscc])[e.uscc]
    for f in findings:
        f.shown_message = f.message if reveal else masking.text(f.message, known)
    ctx = {
        "requests": scope.filter_requests(ServiceRequest.objects.filter(entity=e).select_related("department"),
                                          request.user).order_by("-submitted_at")[:50],
        "e": e, "contact": contact, "revealed": reveal, "can_reveal": scope.can_see_contacts(request.user),
        "revisions": _revisions(e, reveal),
        "findings": findings,
        "timeline": _timeline(e),
        "tasks": ContactTask.objects.filter(entity=e).select_related("message").order_by("-due_on"),
        "notes": Note.objects.filter(entity=e).select_related("author"), "outcomes": OUTCOMES,
        "land": {"history": sorted(land_queries.classes_by_year([e.uscc]).get(e.uscc, {}).items(), reverse=True),
                 "parcels": Parcel.objects.filter(entity=e).order_by("parcel_id"),
                 "cases": Remediation.objects.filter(entity=e).order_by("-flagged_year")},
        "policy_matches": scope.filter_policy_matches(policy_queries.for_entity(e.uscc), request.user)
        .prefetch_related("payments"),
        "lab_bookings": lab_queries.bookings_of(e)[:20],
        "lab_waiting": lab_queries.waiting_of(e)[:10],
        "lab_orders": SampleOrder.objects.filter(entity=e).select_related("lab")[:20],
        "projects": project_queries.with_filing(scope.filter_projects(project_queries.for_entity(e.uscc),
                                                                      request.user)),
        "tech_needs": Need.objects.filter(entity=e).select_related("cooperation", "cooperation__expert")[:20],
        "expert_visits": Visit.objects.filter(entity=e).select_related("expert")[:20],
        "lab_voucher": lab_queries.voucher(e, timezone.localdate().year),
        "listings": abnormal_queries.for_entity(e),
        "samples": inspection_queries.for_entity(e.uscc),
        "can_act_listing": can_act_on_listings(request.user),
    }
    ctx["unreachable_standing"] = any(x.unreachable and x.standing for x in ctx["listings"])
    ctx["today"] = timezone.localdate()
    ctx["not_at_address"] = reminder_actions.NOT_AT_ADDRESS
    # a visit found it not at its address and no decision has followed yet: the form says so
    ctx["unreachable_found"] = next(iter(abnormal_actions.unreachable_due(entities=Entity.objects.filter(pk=e.pk))), None)
    ctx["set_aside"] = list(SetAside.objects.filter(entity=e).select_related("decided_by")[:10])
    if as_file:
        return entity_file.export(request, e, ctx)
    return render(request, "web/entity.html", ctx)


@staff_required(write=True)
@require_POST
def add_note(request, uscc: str):
    e = scope.entity_or_403(request.user, uscc)
    try:
        note = text.clean(request.POST.get("text", ""), 2000)
    except ValueError as err:
        messages.error(request, f"备注{err}")
        return redirect("entity", uscc=e.uscc)
    if note:
        Note.objects.create(entity=e, author=request.user, text=note)
        messages.success(request, "备注已保存")
    return redirect("entity", uscc=e.uscc)


@staff_required
def tasks(request):
    qs = scope.filter_by_town(ContactTask.objects.select_related("entity__town", "message"), request.user, "entity__town")
    status = request.GET.get("status", "open")
    if status in ("open", "done"):
        qs = qs.filter(status=status)
    page = Paginator(qs.order_by("due_on", "id"), 50).get_page(request.GET.get("page"))
    rows = [{"t": t, "phone": masking.phone(t.message.recipient)} for t in page]
    return render(request, "web/tasks.html", {"page": page, "rows": rows, "status": status})


OUTCOMES = reminder_actions.OUTCOMES


@staff_required(write=True)
@require_POST
def close_task(request, task_id: int):
    task = get_object_or_404(scope.filter_by_town(ContactTask.objects.all(), request.user, "entity__town"), pk=task_id)
    outcome = request.POST.get("outcome", "")
    if outcome not in OUTCOMES:
        messages.error(request, "请选择办理结果")
    else:
        try:
            detail = text.clean(request.POST.get("detail", ""), 500)
        except ValueError as err:
            messages.error(request, f"补充说明{err}")
            return redirect("tasks")
        try:
            reminder_actions.close_task(task, outcome, detail)
        except ValueError as err:
            messages.error(request, str(err))
        else:
            messages.success(request, "任务已办结" + ("；可在经营异常名录页作出列入决定（无法联系）"
                                                    if outcome == reminder_actions.NOT_AT_ADDRESS else ""))
    nxt = request.POST.get("next", "")
    return redirect(nxt if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}) else "tasks")


_season_cache = caching.Expiring(ttl=300, limit=100)


def season_summary(season: int, town: str | None) -> dict:
    """The season's reminder proof (``reminders.report``) for the county or one township,
    kept five minutes: it reads every due entity and every message of the season."""
    from qifu.reminders.report import season_report

    return _season_cache.get((season, town), lambda: season_report(season, town=town))


@staff_required
def reminders_season(request):
    """The season's proof: the treated group against the randomised holdout and the blanket
    practice, the filing curves of both, which plan the runs used and why; with definitions."""
    from qifu.reminders.report import report_workbook

    year = queries.latest_report_year()
    default = year + 1 if year else timezone.localdate().year
    try:
        season = int(request.GET.get("season") or default)
    except ValueError:
        season = default
    if not 2000 <= season <= 2100:
        season = default
    town = scope.town_of(request.user)
    report = season_summary(season, town)
    if request.GET.get("format") == "xlsx":
        return audited_xlsx(request, report_workbook(report), f"reminders-{season}", f"申报季提醒成效 {season}")
    days = report["by_day"]["date"]
    step = max(len(days) // 60, 1)
    charts = {"season": {"type": "line", "labels": days[::step], "percent": True, "series": [
        {"label": report["groups"][g]["label"], "values": [round(100 * v, 2) for v in report["by_day"][g][::step]]}
        for g in ("treated", "holdout")]},
        "contacts": {"labels": ["处理组", "对照组"], "label": "每户提醒次数",
                     "values": [round(report["groups"][g]["contacts_per_due_entity"] or 0, 3) for g in ("treated", "holdout")]}}
    return render(request, "web/reminders_season.html", {"r": report, "season": season, "charts": charts,
                                                          "town_name": town_name(town)})


def _proof(report: dict) -> dict | None:
    """The dashboard's three numbers from the season's proof, when qifu has sent anything."""
    t, h = report["groups"]["treated"], report["groups"]["holdout"]
    if not (t["contacts"] or h["contacts"]):
        return None
    return {"season": report["season"], "contacts": t["contacts"] + h["contacts"], "treated": t,
            "saved_vs_blanket": t["saved_vs_blanket"], "saved_vs_holdout": report.get("saved_vs_holdout")}


def town_name(town: str | None) -> str:
    return Township.objects.get(code=town).name if town else "全市"


@staff_required
def corrections_page(request):
    year = queries.latest_report_year()
    findings = scope.filter_by_town(Finding.objects.all(), request.user, "entity__town")
    pending = list(Explanation.objects.filter(status="pending", finding__in=findings)
                   .select_related("finding", "finding__entity")[:100])
    known = queries.personal_values({x.finding.entity_id for x in pending})
    for x in pending:
        x.shown_message = masking.text(x.finding.message, known[x.finding.entity_id])
    return render(request, "web/corrections.html", {
        "year": year, "rates": corrections.rates(year, findings) if year else None,
        "deadline": season.deadline(year) if year else None, "pending": pending,
        "notices": scope.filter_by_town(CorrectionNotice.objects.filter(report_year=year), request.user, "entity__town").count(),
        "is_admin": scope.role_of(request.user) == "admin",
    })


@staff_required(write=True)
@require_POST
def notify(request):
    if scope.role_of(request.user) != "admin":
        raise PermissionDenied("只有局管理员可以发出更正通知")
    year = queries.latest_report_year()
    result = corrections.notify(year, timezone.localdate())
    messages.success(request, f"已生成 {result.notices} 份更正通知，涉及 {result.findings} 个问题")
    return redirect("corrections")


@staff_required(write=True)
@require_POST
def review(request, explanation_id: int):
    findings = scope.filter_by_town(Finding.objects.all(), request.user, "entity__town")
    item = get_object_or_404(Explanation, pk=explanation_id, finding__in=findings)
    try:
        corrections.review(item, request.user, accept=request.POST.get("decision") == "accept",
                           note=request.POST.get("note", ""))
    except ValueError as err:
        messages.error(request, str(err))
        return redirect("corrections")
    messages.success(request, "复核已记录")
    return redirect("corrections")


@signed_in
def password_change(request):
    """Staff and expert partners change their own password; an account on a password someone
    else issued (`qifu staff`, `qifu expert-account`, the administrator's account page) is sent
    here before any other page until it does."""
    from django.contrib.auth import update_session_auth_hash
    from django.contrib.auth.forms import PasswordChangeForm

    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["new_password1"] == form.cleaned_data["old_password"]:
        form.add_error("new_password1", "新密码不能与当前密码相同")
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # this session stays signed in; others end
        messages.success(request, "密码已修改")
        return redirect("home")  # an expert's account goes on to their desk
    expert = scope.expert_of(request.user) is not None
    return render(request, "web/password_change.html", {
        "form": form, "base": "web/expert_base.html" if expert else "web/base.html",
        "first": must_change_password(request.user)})


def healthz(request):
    """For a load balancer or monitor; says which worker process answered (a restart soak
    checks that every worker answers)."""
    response = HttpResponse("ok", content_type="text/plain")
    response["X-Qifu-Worker"] = str(os.getpid())
    return response
