"""What changes a construction project's acceptance: registration with its phases and their
checklists, a document or an inspection result on a checklist item, a phase's move through the
state machine (``engine.projects.workflow``), the one filing, and a stuck step raised as an
enterprise request. Every change is a ``Step`` on the record. A check that fails raises
``ProjectActionError`` and changes nothing."""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.utils import timezone

from qifu import config
from qifu import text as texts
from qifu.engine.projects import checklists, workflow
from qifu.engine.projects.workflow import Move, State
from qifu.engine.requests import workdays
from qifu.projects.models import ChecklistItem, Defect, Phase, Project, Step


class ProjectActionError(ValueError):
    """Something a person can fix, said in Chinese."""


def templates() -> dict[str, checklists.ProjectType]:
    return checklists.load(config.get("QIFU_ACCEPTANCE_TEMPLATES") or None)


def _actor(user) -> str:
    if user is None:
        return "企业"
    return user.get_full_name() or user.username


def _step(project, phase, action: str, user, now, note: str = "", document=None, request=None) -> Step:
    return Step.objects.create(project=project, phase=phase, action=action, actor=_actor(user), user=user, at=now,
                               note=note[:500], document_name=document[0] if document else "",
                               document_sha256=document[1] if document else "", request=request)


def do_register(entity, code: str, name: str, project_type: str, site: str, permits: str,
                phases: list[tuple[str, str]], by=None, now: dt.datetime | None = None) -> Project:
    """A project and its phase plan: each phase a name and its unit works; each phase gets the
    type's checklist."""
    now = now or timezone.now()
    code, name, site = (code or "").strip(), (name or "").strip(), (site or "").strip()
    types = templates()
    if not re.fullmatch(r"[0-9A-Za-z-]{6,40}", code):
        raise ProjectActionError("项目代码应为 6 到 40 位数字、字母或连字符（投资项目代码）")
    if project_type not in types:
        raise ProjectActionError("项目类型应为：" + "、".join(f"{t.name}（{k}）" for k, t in types.items()))
    if len(name) < 4 or len(site) < 2:
        raise ProjectActionError("请填写项目名称（至少4个字）和建设地点")
    phases = [(n.strip(), u.strip()) for n, u in phases if n.strip()]
    if not 1 <= len(phases) <= 20:
        raise ProjectActionError("请列出 1 到 20 个验收分期")
    if any(not u for _, u in phases):
        raise ProjectActionError("每一期都要写明包含的单位工程")
    if Project.objects.filter(code=code).exists():
        raise ProjectActionError(f"项目代码 {code} 已登记")
    with transaction.atomic():
        project = Project.objects.create(code=code, name=name, entity=entity, town_id=entity.town_id, site=site,
                                         project_type=project_type, permits=(permits or "").strip()[:300],
                                         registered_at=now)
        for seq, (pname, units) in enumerate(phases, start=1):
            phase = Phase.objects.create(project=project, seq=seq, name=pname[:100], unit_works=units[:2000])
            ChecklistItem.objects.bulk_create(ChecklistItem(phase=phase, code=i.code, name=i.name, kind=i.kind,
                                                            authority=i.authority) for i in types[project_type].items)
        _step(project, None, "登记项目", by, now, f"{types[project_type].name}，分 {len(phases)} 期验收")
    return project


def parse_phases(text: str) -> list[tuple[str, str]]:
    """“一期：1号厂房、2号厂房；二期：3号厂房” as [(name, unit works one per line)]."""
    out = []
    for part in re.split(r"[；;\n]", text or ""):
        name, sep, units = part.partition("：") if "：" in part else part.partition(":")
        if part.strip():
            out.append((name.strip(), "\n".join(u.strip() for u in re.split(r"[、,，]", units) if u.strip())
                        if sep else ""))
    return out


def import_rows(rows: list[dict]) -> tuple[int, int, int, list[tuple[int, str, str, str]]]:
    """Register the projects not yet known (their phases as listed); a known project's name, site
    and permits are updated, its phases kept as registered. Returns (new, changed, unchanged,
    problems by row); with any problem nothing is to be kept (the import rolls back)."""
    from qifu.registry.models import Entity

    known = {p.code: p for p in Project.objects.filter(code__in=[r["project_code"] for r in rows])}
    entities = Entity.objects.in_bulk([r["uscc"] for r in rows])
    new = changed = same = 0
    problems = []
    for r in rows:
        p = known.get(r["project_code"])
        if p is None:
            try:
                do_register(entities[r["uscc"]], r["project_code"], r["name"], r["project_type"], r["site"],
                            r.get("permits") or "", parse_phases(r["phases"]))
                new += 1
            except ProjectActionError as e:
                field = ("project_type" if "类型" in str(e) else "phases" if "分期" in str(e) or "单位工程" in str(e)
                         else "project_code")
                problems.append((r["__row"], field, str(r.get(field, ""))[:60], str(e)))
            continue
        if p.entity_id != r["uscc"]:
            problems.append((r["__row"], "uscc", r["uscc"], f"项目 {p.code} 已登记在另一建设单位名下"))
            continue
        fields = {"name": r["name"], "site": r["site"], "permits": r.get("permits") or ""}
        if any(getattr(p, k) != v for k, v in fields.items()):
            Project.objects.filter(pk=p.pk).update(**fields)
            changed += 1
        else:
            same += 1
    return new, changed, same, problems


MAX_PROMISE_DAYS = 180  # a document let pass under 承诺容缺 is handed in within this many days


def do_item(item: ChecklistItem, result: str, *, document: tuple[str, str, bytes] | None = None, note: str = "",
            due: dt.date | None = None, keep: list[int] | None = None, by=None,
            now: dt.datetime | None = None) -> ChecklistItem:
    """A document handed in (``submitted``), a document let pass against the owner's written
    promise to hand it in by ``due`` (``promised``, 承诺容缺: staff, with what was promised in
    ``note``), or an inspection's result (``passed`` / ``failed``, with its problems, one per
    line of ``note``, and, at a re-inspection, ``keep``: those of its earlier problems found
    still not fixed, open again; the others are closed). Not on an accepted phase, except the
    promised document itself."""
    from qifu.service_requests import attachments

    now = now or timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        item = ChecklistItem.objects.select_for_update().select_related("phase__project").get(pk=item.pk)
        phase = item.phase
        fulfils = item.status == ChecklistItem.Status.PROMISED and result == ChecklistItem.Status.SUBMITTED
        if phase.state in workflow.DONE and not fulfils:
            raise ProjectActionError("本期已验收，事项不能再改")
        if item.kind == "document" and result == ChecklistItem.Status.PROMISED:
            today = timezone.localdate(now)
            if item.status == ChecklistItem.Status.SUBMITTED:
                raise ProjectActionError(f"“{item.name}”已经提交，不需要承诺容缺")
            if due is None or not today < due <= today + dt.timedelta(days=MAX_PROMISE_DAYS):
                raise ProjectActionError(f"请填写承诺补交的期限（今天以后，{MAX_PROMISE_DAYS} 天以内）")
            if len(note) < 2:
                raise ProjectActionError("请写明企业承诺的内容（如：承诺于期限前补交检测报告）")
        elif item.kind == "document":
            if result != ChecklistItem.Status.SUBMITTED:
                raise ProjectActionError("资料类事项只能“提交”或“承诺容缺”")
            if document is None:
                raise ProjectActionError(f"请上传“{item.name}”（PDF 或图片）")
        else:
            if result not in (ChecklistItem.Status.PASSED, ChecklistItem.Status.FAILED):
                raise ProjectActionError("专项验收的结果应为“通过”或“未通过”")
            if phase.state != State.NOTIFIED:
                raise ProjectActionError("告知质监站、组织联合验收后才能登记专项验收结果")
            if result == ChecklistItem.Status.FAILED and not defect_lines(note) and not keep:
                raise ProjectActionError("未通过的，请写明问题，每行一项")
        stored = (document[0][:200], attachments.store(document[2])) if document else None
        item.status, item.note, item.updated_at = result, note[:500], now
        if result == ChecklistItem.Status.PROMISED:
            item.promised_until = due
            note = f"{note}；{due:%Y-%m-%d} 前补交"
        if stored:
            item.document_name, item.document_sha256 = stored
        item.save()
        label = "补交承诺容缺的资料" if fulfils else dict(ChecklistItem.Status.choices)[result]
        still: list[str] = []
        if item.kind == "inspection":
            earlier = item.defects.exclude(status=Defect.Status.CLOSED)
            if result == ChecklistItem.Status.FAILED and keep:  # found still not fixed: open again
                kept = earlier.filter(pk__in=keep)
                still = list(kept.values_list("text", flat=True))
                kept.update(status=Defect.Status.OPEN, fixed_at=None)
                earlier = earlier.exclude(pk__in=keep)
            # the others are settled: passed now, or listed anew below
            earlier.update(status=Defect.Status.CLOSED, closed_at=now)
        if result == ChecklistItem.Status.FAILED:
            lines = defect_lines(note)
            if not lines and not still:  # ``keep`` named none of this item's problems
                raise ProjectActionError("未通过的，请写明问题，每行一项")
            Defect.objects.bulk_create([Defect(phase=phase, item=item, text=t, raised_at=now) for t in lines])
            note = "；".join(x for x in (f"问题 {len(lines)} 项：" + "；".join(lines) if lines else "",
                                        f"仍未整改 {len(still)} 项：" + "；".join(still) if still else "") if x)
        _step(phase.project, phase, f"{item.name}：{label}", by, now, note[:500], stored)
    return item


def defect_lines(note: str) -> list[str]:
    """The problems of a failed inspection's result, one per line, their numbering (1. 1、 (1)
    ①) dropped."""
    lines = (re.sub(r"^\s*(?:[(（]?\d{1,2}[)）.、．](?!\d)|[①-⑳])\s*", "", line).strip() for line in (note or "").splitlines())
    return [line[:300] for line in lines if len(line) >= 2]


def do_fix(defect: Defect, document: tuple[str, str, bytes] | None, note: str = "", by=None,
           now: dt.datetime | None = None) -> Defect:
    """The owner (or staff for it: ``by``) reports a problem fixed, with a photo or a document
    that shows it; reported again, the newer one replaces it until the re-inspection."""
    from qifu.service_requests import attachments

    now = now or timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        d = Defect.objects.select_for_update().select_related("phase__project").get(pk=defect.pk)
        if d.status == Defect.Status.CLOSED:
            raise ProjectActionError("这个问题已经销项")
        if document is None:
            raise ProjectActionError("请上传整改后的照片或材料（PDF 或图片）")
        d.document_name, d.document_sha256 = document[0][:200], attachments.store(document[2])
        d.status, d.fixed_at, d.fixed_note = Defect.Status.FIXED, now, note[:500]
        d.save()
        _step(d.phase.project, d.phase, f"整改：{d.text}"[:40], by, now, note[:500],
              (d.document_name, d.document_sha256))
    return d


# a document in hand, or let pass under 承诺容缺 until the filing
IN_HAND = (ChecklistItem.Status.SUBMITTED, ChecklistItem.Status.PROMISED)


def do_move(phase: Phase, move: str, *, inspection_on: dt.date | None = None, note: str = "", by=None,
            now: dt.datetime | None = None) -> Phase:
    """Move a phase through the state machine, with the move's own conditions."""
    now = now or timezone.now()
    with transaction.atomic():
        phase = Phase.objects.select_for_update().select_related("project").get(pk=phase.pk)
        try:
            target = workflow.next_state(phase.state, move)
        except workflow.IllegalMove as e:
            raise ProjectActionError(str(e)) from None
        items = list(phase.items.all())
        missing = [i.name for i in items if i.kind == "document" and i.status not in IN_HAND]
        if move == Move.READY and missing:
            raise ProjectActionError("资料不齐：" + "、".join(missing))
        if move == Move.NOTIFY:
            if inspection_on is None:
                raise ProjectActionError("请填写联合验收日期")
            earliest = timezone.localtime(workdays.due(now, workflow.NOTICE_WORKDAYS)).date()
            if inspection_on < earliest:
                raise ProjectActionError(f"须提前 {workflow.NOTICE_WORKDAYS} 个工作日告知质监站：联合验收最早 {earliest}")
            if phase.state == State.RECTIFYING:
                still = [d.text for d in phase.defects.filter(status=Defect.Status.OPEN)]
                if still:
                    raise ProjectActionError(f"还有 {len(still)} 项问题未整改：" + "；".join(still))
            phase.notified_at, phase.inspection_on = now, inspection_on
            # after rectification the failed inspections are inspected again
            phase.items.filter(status=ChecklistItem.Status.FAILED).update(status=ChecklistItem.Status.PENDING)
        if move == Move.ACCEPT:
            open_items = [i.name for i in items if (i.kind == "document" and i.status not in IN_HAND)
                          or (i.kind == "inspection" and i.status != ChecklistItem.Status.PASSED)]
            if open_items:
                raise ProjectActionError("还有事项没有完成或没有通过：" + "、".join(open_items))
            phase.accepted_at = now
        if move == Move.RECTIFY and not any(i.status == ChecklistItem.Status.FAILED for i in items):
            raise ProjectActionError("没有未通过的专项验收，不需要整改")
        if move == Move.READY:
            phase.ready_at = now
        if move == Move.USE:
            phase.in_use_at = now
        phase.state = target
        phase.save()
        detail = f"联合验收日期 {inspection_on}" if move == Move.NOTIFY else ""
        _step(phase.project, phase, workflow.MOVE_LABELS[Move(move)], by, now, "；".join(x for x in (detail, note) if x))
        _refresh_status(phase.project)
        if move == Move.NOTIFY:
            _tell_inspection(phase, now, eve=False)
        if move == Move.RECTIFY:
            _tell_rectify(phase, now)
    return phase


def _tell_rectify(phase: Phase, now: dt.datetime) -> bool:
    """The owner told in writing, once per failed inspection, how many problems to fix and where
    to report them. False: nothing reaches the owner."""
    from qifu.reminders import decency

    p = phase.project
    n = phase.defects.filter(status=Defect.Status.OPEN).count()
    body = (f"【企服】{p.entity.name}：建设项目“{p.name}”第{phase.seq}期（{phase.name}）联合验收未通过，需整改 {n} 项问题。"
            f"请登录企服平台“分期验收”逐项上传整改照片或材料，全部整改后再约复验。")
    return decency.tell_once(f"project-rectify:{phase.pk}:{phase.inspection_on.isoformat()}", p.entity_id, "project",
                             p.entity.phone, p.entity.email, body, f"项目 {p.code} 第{phase.seq}期整改 {n} 项", now) is not None


def _inspection_eve(day: dt.date) -> dt.date:
    """The last working day before ``day``."""
    eve = day - dt.timedelta(days=1)
    while not workdays.is_workday(eve):
        eve -= dt.timedelta(days=1)
    return eve


def _inspection_key(phase: Phase, eve: bool) -> str:
    return f"project-inspection:{phase.pk}:{phase.inspection_on.isoformat()}:{'eve' if eve else 'set'}"


def _tell_inspection(phase: Phase, now: dt.datetime, eve: bool) -> bool:
    """The owner told in writing of a phase's joint inspection: when the station is notified
    of its date, and again on the working day before; once each per phase and date (a phase
    notified again after rectification has a date of its own). False: nothing reaches the owner."""
    from qifu.reminders import decency

    p, day = phase.project, phase.inspection_on
    when = f"{day.month}月{day.day}日（周{'一二三四五六日'[day.weekday()]}）"
    what = f"建设项目“{p.name}”第{phase.seq}期（{phase.name}）"
    if eve:
        body = f"【企服】{p.entity.name}：提醒：{what}的联合验收在{when}，请建设、施工、监理等单位按时到场，备齐验收资料。"
    else:
        body = (f"【企服】{p.entity.name}：{what}已告知质监站，联合验收定于{when}，请建设、施工、监理等单位按时到场，"
                f"备齐验收资料。")
    key = _inspection_key(phase, eve)
    reason = f"项目 {p.code} 第{phase.seq}期联合验收 {day.isoformat()}{'（前一工作日提醒）' if eve else ''}"
    return decency.tell_once(key, p.entity_id, "project", p.entity.phone, p.entity.email, body, reason, now) is not None


def remind_inspections(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): the owner of every phase whose joint inspection is on the
    next working day (or, the worker having been down, still ahead) is reminded once. Returns
    the messages queued."""
    from qifu.reminders import decency

    now = now or timezone.now()
    today = timezone.localdate(now)
    due = [phase for phase in (Phase.objects.filter(state=State.NOTIFIED, inspection_on__gt=today)
                               .select_related("project__entity").order_by("inspection_on", "pk"))
           if today >= _inspection_eve(phase.inspection_on)]
    told = decency.told(_inspection_key(p, eve=True) for p in due)
    return sum(_tell_inspection(p, now, eve=True) for p in due if _inspection_key(p, eve=True) not in told)


PROMISE_REMIND_DAYS = 3  # the owner is reminded this many days before a promised document is due


def remind_promises(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): the owner of each document let pass under 承诺容缺 and
    still not handed in is reminded once, from ``PROMISE_REMIND_DAYS`` days before it is due (at
    once where it is due sooner, or overdue). Returns the messages queued."""
    from qifu.reminders import decency

    now = now or timezone.now()
    today = timezone.localdate(now)
    due = list(ChecklistItem.objects.filter(status=ChecklistItem.Status.PROMISED,
                                            promised_until__lte=today + dt.timedelta(days=PROMISE_REMIND_DAYS))
               .select_related("phase__project__entity").order_by("promised_until", "pk"))
    keys = {i.pk: f"project-promise:{i.pk}:{i.promised_until.isoformat()}" for i in due}
    told = decency.told(keys.values())
    queued = 0
    for i in due:
        if keys[i.pk] in told:
            continue
        p, day = i.phase.project, i.promised_until
        when = f"请于 {day.month}月{day.day}日前" if day >= today else f"补交期限 {day.month}月{day.day}日已过，请尽快"
        body = (f"【企服】{p.entity.name}：建设项目“{p.name}”第{i.phase.seq}期承诺容缺的“{i.name}”尚未补交，{when}"
                f"登录企服平台“分期验收”提交。补齐后才能办理一次备案。")
        queued += decency.tell_once(keys[i.pk], p.entity_id, "project", p.entity.phone, p.entity.email, body,
                                    f"项目 {p.code} 承诺容缺 {i.name}，期限 {day.isoformat()}", now) is not None
    return queued


def _refresh_status(project: Project) -> None:
    status = workflow.project_status(list(project.phases.values_list("state", flat=True)), project.filed_at is not None)
    if status != project.status:
        Project.objects.filter(pk=project.pk).update(status=status)


def do_file(project: Project, filing_no: str, by=None, now: dt.datetime | None = None) -> Project:
    """The one filing (一次备案) covering every phase, allowed only when every phase is accepted."""
    now = now or timezone.now()
    filing_no = (filing_no or "").strip()
    if not 4 <= len(filing_no) <= 40:
        raise ProjectActionError("请填写备案编号")
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        if project.filed_at:
            raise ProjectActionError(f"已于 {timezone.localtime(project.filed_at):%Y-%m-%d} 备案")
        phases = list(project.phases.all())
        waiting = [str(p) for p in phases if p.state not in workflow.DONE]
        if waiting:
            raise ProjectActionError("以下分期还没有验收，不能备案：" + "、".join(waiting))
        promised = [f"第{i.phase.seq}期“{i.name}”" for i in ChecklistItem.objects.filter(
            phase__project=project, status=ChecklistItem.Status.PROMISED).select_related("phase").order_by("phase__seq", "id")]
        if promised:
            raise ProjectActionError("承诺容缺的资料还没有补交，不能备案：" + "、".join(promised))
        last = max(p.accepted_at for p in phases)
        late = (now - last).days > workflow.FILING_DAYS
        project.filed_at, project.filing_no, project.status = now, filing_no, "filed"
        project.save(update_fields=["filed_at", "filing_no", "status"])
        _step(project, None, "竣工验收备案（一次备案）", by, now,
              f"备案编号 {filing_no}，覆盖 {len(phases)} 期" + (f"；超过 {workflow.FILING_DAYS} 天期限" if late else ""))
    return project


def do_raise(phase: Phase, text: str, now: dt.datetime | None = None):
    """The firm raises a stuck step as an enterprise request (项目审批与验收), linked on the record."""
    from qifu.service_requests import actions as requests

    now = now or timezone.now()
    text = texts.written(text, "求助内容", ProjectActionError, "请写明卡在哪一步、需要什么帮助（至少4个字）")
    project = phase.project
    body = f"【分期验收】项目 {project.code} {project.name} 第{phase.seq}期（{phase.get_state_display()}）：{text}"
    try:  # the queue's own rules (control characters, length, a firm's hourly limit), said as this step's
        with transaction.atomic():
            req = requests.do_submit_request(text=body, channel="portal", actor=requests.ENTERPRISE,
                                             entity=project.entity, category="construction", now=now)
            _step(project, phase, "企业反映问题", None, now, text, request=req)
    except requests.RequestError as e:
        raise ProjectActionError(str(e)) from None
    return req


REMIND_DAYS_BEFORE = 5  # the owner is told this many days before the filing deadline


def filing_due(project: Project) -> dt.date | None:
    """The last day of the one filing: 15 days after the last phase's acceptance (竣工验收备案,
    建设工程质量管理条例 Art. 49), or None while a phase is still to be accepted or once filed."""
    if project.filed_at is not None:
        return None
    phases = list(project.phases.all())
    if not phases or any(p.state not in workflow.DONE or p.accepted_at is None for p in phases):
        return None
    return timezone.localdate(max(p.accepted_at for p in phases)) + dt.timedelta(days=workflow.FILING_DAYS)


def filing_key(project: Project) -> str:
    """The outbox key of the project's filing reminder: one per project, ever."""
    return f"project-filing:{project.code}"


def remind_filings(now: dt.datetime | None = None) -> int:
    """One text (or e-mail) to each owner whose every phase is accepted and whose filing is due
    within ``REMIND_DAYS_BEFORE`` days or overdue: once per project (the outbox key), whenever
    the daily job runs. An owner reached by neither is left to staff, whose list shows the
    overdue filings. Returns the messages queued."""
    import polars as pl

    from qifu.reminders import decency
    from qifu.reminders.models import OutboxMessage

    now = now or timezone.now()
    today = timezone.localdate(now)
    due: dict[str, tuple[Project, dt.date]] = {}
    for p in Project.objects.filter(status="accepted", filed_at__isnull=True).select_related("entity") \
            .prefetch_related("phases"):
        last_day = filing_due(p)
        if last_day is not None and today >= last_day - dt.timedelta(days=REMIND_DAYS_BEFORE):
            due[filing_key(p)] = (p, last_day)
    told = decency.told(due)
    rows = [{"key": k, "phone": p.entity.phone, "email": p.entity.email} for k, (p, _) in due.items() if k not in told]
    if not rows:
        return 0
    reach = decency.in_writing(pl.DataFrame(rows, schema=dict.fromkeys(("key", "phone", "email"), pl.String)))
    queued = 0
    for r in reach.iter_rows(named=True):
        p, last_day = due[r["key"]]
        left = (last_day - today).days
        day = f"{last_day.month}月{last_day.day}日"
        when = f"请于 {day}前" if left >= 0 else f"备案期限 {day}已过，请尽快"
        body = (f"【企服】{p.entity.name}：建设项目“{p.name}”各期已全部验收，{when}到住建部门办理竣工验收备案"
                f"（一次备案）。如已办理请忽略。")
        _, created = OutboxMessage.objects.get_or_create(key=r["key"], defaults={
            "entity": p.entity, "purpose": "project", "channel": r["channel"], "recipient": r["recipient"],
            "body": body, "reason": f"项目 {p.code} 全部验收，备案期限 {last_day.isoformat()}",
            "planned_for": today, "next_attempt_at": now})
        queued += created
    return queued
