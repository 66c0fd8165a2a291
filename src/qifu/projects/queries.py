"""Reading phased acceptance for pages: per project the days from its first phase being ready to
that phase's use, against the single final acceptance it replaces (the type's baseline); the
counts by status; filings pending, by deadline."""

from __future__ import annotations

import statistics

from django.utils import timezone

from qifu import text as texts
from qifu.engine.projects import workflow
from qifu.projects import actions
from qifu.projects.models import ChecklistItem, Defect, Phase, Project
from qifu.reminders import decency


def gains(projects) -> list[dict]:
    """Projects whose first phase is in use: days it took, the baseline, and days gained."""
    types = actions.templates()
    out = []
    for p in projects.prefetch_related("phases"):
        phases = sorted(p.phases.all(), key=lambda ph: ph.seq)
        first = phases[0] if phases else None
        if first is None or not (first.ready_at and first.in_use_at):
            continue
        days = (first.in_use_at - first.ready_at).days
        baseline = types[p.project_type].baseline_days if p.project_type in types else None
        out.append({"project": p, "days": days, "baseline": baseline,
                    "gained": baseline - days if baseline is not None else None})
    return out


def filing(project: Project) -> dict | None:
    """The project's pending filing: its last day, days left and days late; None while a phase
    is still to be accepted, or once filed."""
    due = actions.filing_due(project)
    if due is None:
        return None
    today = timezone.localdate()
    return {"project": project, "due": due, "left": (due - today).days, "late": (today - due).days}


def measures(projects) -> dict:
    rows = gains(projects)
    status = dict.fromkeys(workflow.PROJECT_LABELS, 0)
    for s in projects.values_list("status", flat=True):
        status[s] = status.get(s, 0) + 1
    filings = []  # every project whose phases are all accepted and that has not filed, by deadline
    for p in projects.filter(status="accepted").select_related("entity").prefetch_related("phases"):
        if (f := filing(p)) is not None:
            filings.append(f)
    filings.sort(key=lambda f: f["due"])
    told = decency.told(actions.filing_key(f["project"]) for f in filings)
    for f in filings:
        f["told"] = actions.filing_key(f["project"]) in told
    phases = Phase.objects.filter(project__in=projects)
    today = timezone.localdate()
    promised = [{"item": i, "late": (today - i.promised_until).days}
                for i in ChecklistItem.objects.filter(phase__project__in=projects, status=ChecklistItem.Status.PROMISED)
                .select_related("phase__project__entity").order_by("promised_until", "id")]
    defects = [{"defect": d, "days": (today - timezone.localdate(d.raised_at)).days}
               for d in Defect.objects.filter(phase__project__in=projects).exclude(status=Defect.Status.CLOSED)
               .select_related("phase__project__entity", "item").order_by("raised_at", "id")]
    return {
        "rows": rows, "status": [(workflow.PROJECT_LABELS[k], v) for k, v in status.items()],
        "defects": defects, "defects_open": sum(d["defect"].status == Defect.Status.OPEN for d in defects),
        "projects": sum(status.values()), "phases": phases.count(),
        "accepted": phases.filter(state__in=workflow.DONE).count(),
        "rectifying": phases.filter(state=workflow.State.RECTIFYING).count(),
        "median_days": statistics.median([r["days"] for r in rows]) if rows else None,
        "median_gained": statistics.median([r["gained"] for r in rows if r["gained"] is not None]) if rows else None,
        "filings": filings, "overdue": [f for f in filings if f["left"] < 0], "promised": promised,
        "chart": {"labels": [texts.shorten(r["project"].name, 14) for r in rows], "horizontal": True, "series": [
            {"label": "分期验收：首期从具备条件到投入使用（天）", "values": [r["days"] for r in rows]},
            {"label": "整体一次验收的基准（天）", "values": [r["baseline"] for r in rows]}]},
    }


def for_entity(uscc: str):
    return Project.objects.filter(entity_id=uscc).prefetch_related("phases")


def with_filing(projects) -> list[Project]:
    """``projects`` each with ``filing`` (see ``filing``), ``promised`` (the documents
    promised under 承诺容缺 and still out) and ``to_fix`` (the problems of failed inspections
    not fixed yet), for the entity page."""
    out = list(projects)
    promised: dict[int, list[ChecklistItem]] = {}
    for i in ChecklistItem.objects.filter(phase__project__in=[p.pk for p in out], status=ChecklistItem.Status.PROMISED) \
            .select_related("phase").order_by("promised_until", "id"):
        promised.setdefault(i.phase.project_id, []).append(i)
    to_fix = open_defects([p.pk for p in out])
    for p in out:
        p.filing = filing(p)
        p.promised = promised.get(p.pk, [])
        p.to_fix = to_fix.get(p.pk, 0)
    return out


def open_defects(project_ids) -> dict[int, int]:
    """How many problems of failed inspections each project still has to fix (待整改)."""
    rows = Defect.objects.filter(phase__project__in=project_ids, status=Defect.Status.OPEN).values_list(
        "phase__project_id", flat=True)
    out: dict[int, int] = {}
    for pk in rows:
        out[pk] = out.get(pk, 0) + 1
    return out
