"""`qifu import requests` (contract §1.7): the hotline's and the stations' ledgers of requests,
into the one queue. Idempotent on ``request_id``: a re-import changes nothing; a changed row
(closed since, rated, reclassified) updates the request and is recorded in its history.

An open request comes in awaiting sign-off, its clock started at ``submitted_at``; a closed one
is closed at ``closed_at``. A category the file gives was chosen by a person (the routing
model learns from it); an empty one is suggested by the model. A department the file does not
give comes from the category.
"""

from __future__ import annotations

import polars as pl
from django.db import transaction
from django.utils import timezone

from qifu.engine.requests import workdays
from qifu.engine.requests.workflow import State
from qifu.registry.models import Entity, Township
from qifu.service_requests import settings
from qifu.service_requests.models import RequestEvent, ServiceRequest

FIELDS = ("category", "department_id", "status", "closed_at", "satisfaction")


def import_history(frame: pl.DataFrame, progress=None) -> tuple[int, int, int]:
    """(inserted, updated, unchanged). Runs in the importer's transaction."""
    from qifu.service_requests.routing import router

    now = timezone.now()
    rows = frame.to_dicts()
    existing = {r.number: r for r in ServiceRequest.objects.filter(number__in=[r["request_id"] for r in rows])}
    usccs = {r["uscc"] for r in rows if r.get("uscc")}
    towns_of = dict(Entity.objects.filter(uscc__in=usccs).values_list("uscc", "town_id"))
    towns = {t.name: t.code for t in Township.objects.all()}
    limits = settings.limits()
    departments: dict[str, int] = {}
    unsorted = [row["text"] for row in rows if not row.get("category")]
    routes = iter(router().route_many(unsorted) if unsorted else ())
    new, changed, events = [], [], []
    for row in rows:
        category, confirmed, score = row.get("category"), bool(row.get("category")), None
        if not category:
            r = next(routes)
            category, score = r.category, r.score
        dep_name = (row.get("department") or "").strip()
        if dep_name:
            if dep_name not in departments:
                departments[dep_name] = settings.department_named(dep_name).id
            department_id = departments[dep_name]
        else:
            department_id = limits[category].department_id
        closed = row["status"] == "closed"
        values = {
            "category": category, "department_id": department_id,
            "status": State.CLOSED if closed else State.SUBMITTED,
            "closed_at": (row.get("closed_at") or row["submitted_at"]) if closed else None,
            "satisfaction": row.get("satisfaction") or "",
        }
        old = existing.get(row["request_id"])
        if old is None:
            submitted = row["submitted_at"]
            town = towns_of.get(row.get("uscc")) or towns.get((row.get("town") or "").strip())
            lim = limits[category]
            req = ServiceRequest(
                number=row["request_id"], entity_id=row.get("uscc"), town_id=town, channel=row["channel"],
                category_confirmed=confirmed, route_score=score, text=row["text"], submitted_at=submitted,
                updated_at=values["closed_at"] or submitted, imported_at=now,
                sign_due=workdays.due(submitted, lim.sign_days), answer_due=workdays.due(submitted, lim.answer_days),
                rated_at=values["closed_at"] if values["satisfaction"] else None, **values,
            )
            new.append(req)
            continue
        diff = {k: v for k, v in values.items() if getattr(old, k) != v and not (k == "category" and not confirmed)}
        if not diff:
            continue
        for k, v in diff.items():
            setattr(old, k, v)
        old.updated_at = now
        changed.append(old)
        events.append(RequestEvent(request=old, at=now, move="edit", actor="导入", from_status="", to_status=old.status,
                                   note="导入更新：" + "、".join(sorted(diff))))
    with transaction.atomic():
        ServiceRequest.objects.bulk_create(new, batch_size=2000)
        if changed:
            ServiceRequest.objects.bulk_update(changed, [*FIELDS, "updated_at"], batch_size=2000)
        made = list(ServiceRequest.objects.filter(number__in=[r.number for r in new]).values_list("id", "status",
                                                                                                   "submitted_at", "closed_at"))
        for pk, status, submitted, closed_at in made:
            events.append(RequestEvent(request_id=pk, at=submitted, move="submit", actor="导入", to_status=State.SUBMITTED,
                                       note="从诉求台账导入"))
            if status == State.CLOSED:
                events.append(RequestEvent(request_id=pk, at=closed_at, move="confirm", actor="导入",
                                           from_status=State.SUBMITTED, to_status=State.CLOSED, note="台账记为已办结"))
        RequestEvent.objects.bulk_create(events, batch_size=5000)
    if progress:
        progress("写入", len(rows), len(rows))
    return len(new), len(changed), len(rows) - len(new) - len(changed)
