"""Phased acceptance (分期验收、一次备案): registration with each phase's checklist from the type's
template; the phase's state machine with its conditions (documents in, the quality station told
three working days ahead, every inspection passed, rectification); the one filing only when
every phase is accepted; every step on the record; days gained against a single final
acceptance; the portal, a stuck step raised as a request, township isolation and the API."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from qifu.engine.projects import checklists, workflow
from qifu.projects import actions, queries
from qifu.projects.models import ChecklistItem, Phase, Project, Step
from qifu.registry.models import Entity
from qifu.service_requests.models import ServiceRequest
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 9, 1, 10, 0, tzinfo=SH)  # a Tuesday
PDF = ("报告.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")
PHOTO = ("整改后.pdf", "application/pdf", b"%PDF-1.4\n% fixed\n%%EOF\n")


@pytest.fixture
def county(checked_county, data_dir):
    yield checked_county
    ServiceRequest.objects.filter(text__startswith="【分期验收】").delete()


def firm(town=None) -> Entity:
    qs = Entity.objects.filter(entity_type="enterprise", status="active")
    return (qs.filter(town=town) if town is not None else qs).order_by("uscc").first()


def register(entity=None, code="330282-2026-0001") -> Project:
    return actions.do_register(entity or firm(), code, "年产十万台家电扩建项目", "industrial", "慈溪滨海经济开发区", "建字第0001号",
                               [("一期", "1号厂房\n2号厂房"), ("二期", "3号厂房、综合楼")], now=NOW)


def documents_in(phase: Phase, at=NOW) -> None:
    for item in phase.items.filter(kind="document"):
        actions.do_item(item, "submitted", document=PDF, now=at)


def inspections(phase: Phase, failed: str | None = None, at=NOW) -> None:
    for item in phase.items.filter(kind="inspection"):
        bad = item.code == failed
        actions.do_item(item, "failed" if bad else "passed", note="消防通道宽度不足" if bad else "", now=at)


def fix_all(phase: Phase, at=NOW) -> None:
    for d in phase.defects.filter(status="open"):
        actions.do_fix(d, PHOTO, "已整改", now=at)


def test_registration_checks_its_input_and_builds_each_phases_checklist(county):
    with pytest.raises(actions.ProjectActionError, match="项目代码"):
        actions.do_register(firm(), "x", "年产十万台家电扩建项目", "industrial", "开发区", "", [("一期", "1号厂房")])
    with pytest.raises(actions.ProjectActionError, match="项目类型"):
        actions.do_register(firm(), "330282-2026-0001", "年产十万台家电扩建项目", "shipyard", "开发区", "", [("一期", "1号厂房")])
    with pytest.raises(actions.ProjectActionError, match="单位工程"):
        actions.do_register(firm(), "330282-2026-0001", "年产十万台家电扩建项目", "industrial", "开发区", "", [("一期", "")])
    assert not Project.objects.exists()
    p = register()
    template = checklists.load()["industrial"]
    for phase in p.phases.all():
        assert sorted(phase.items.values_list("code", flat=True)) == sorted(i.code for i in template.items)
    assert p.status == "building" and p.town_id == p.entity.town_id
    with pytest.raises(actions.ProjectActionError, match="已登记"):
        register()


def test_a_phase_moves_only_as_the_machine_allows_and_the_filing_waits_for_every_phase(county):
    p = register()
    one, two = p.phases.order_by("seq")
    with pytest.raises(actions.ProjectActionError, match="资料不齐"):
        actions.do_move(one, "ready", now=NOW)
    with pytest.raises(actions.ProjectActionError, match="不能“验收通过”"):
        actions.do_move(one, "accept", now=NOW)
    with pytest.raises(actions.ProjectActionError, match="上传"):
        actions.do_item(one.items.filter(kind="document").first(), "submitted", now=NOW)
    documents_in(one)
    with pytest.raises(actions.ProjectActionError, match="告知质监站、组织联合验收后"):
        actions.do_item(one.items.filter(kind="inspection").first(), "passed", now=NOW)
    actions.do_move(one, "ready", now=NOW)
    with pytest.raises(actions.ProjectActionError, match="联合验收日期"):
        actions.do_move(one, "notify", now=NOW)
    with pytest.raises(actions.ProjectActionError, match="提前 3 个工作日"):
        actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 3), now=NOW)
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    inspections(one, failed="fire", at=NOW + dt.timedelta(days=6))
    with pytest.raises(actions.ProjectActionError, match="消防验收或备案"):
        actions.do_move(one, "accept", now=NOW + dt.timedelta(days=6))
    actions.do_move(one, "rectify", now=NOW + dt.timedelta(days=6))
    fix_all(one, at=NOW + dt.timedelta(days=7))
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 14), now=NOW + dt.timedelta(days=7))
    assert one.items.get(code="fire").status == "pending"  # inspected again after rectification
    actions.do_item(one.items.get(code="fire"), "passed", now=NOW + dt.timedelta(days=13))
    actions.do_move(one, "accept", now=NOW + dt.timedelta(days=13))
    actions.do_move(one, "use", now=NOW + dt.timedelta(days=15))
    p.refresh_from_db()
    assert p.status == "partial"
    with pytest.raises(actions.ProjectActionError, match="第2期"):
        actions.do_file(p, "BA-2026-001", now=NOW + dt.timedelta(days=16))
    with pytest.raises(actions.ProjectActionError, match="已验收"):
        actions.do_item(one.items.filter(kind="document").first(), "submitted", document=PDF)
    later = NOW + dt.timedelta(days=90)
    documents_in(two, later)
    actions.do_move(two, "ready", now=later)
    actions.do_move(two, "notify", inspection_on=dt.date(2026, 12, 7), now=later)
    inspections(two, at=later)
    actions.do_move(two, "accept", now=later)
    p.refresh_from_db()
    assert p.status == "accepted"
    actions.do_file(p, "BA-2026-001", now=later + dt.timedelta(days=3))
    p.refresh_from_db()
    assert p.status == "filed" and p.filing_no == "BA-2026-001"
    with pytest.raises(actions.ProjectActionError, match="已于"):
        actions.do_file(p, "BA-2026-002")
    steps = list(Step.objects.filter(project=p))
    assert steps[0].action == "登记项目" and steps[-1].action.startswith("竣工验收备案")
    # five documents in each phase and the photo of the one problem fixed, each on the record
    assert sum(bool(s.document_sha256) for s in steps) == 11
    assert all(s.actor and s.at for s in steps)
    # the first phase was in use 15 days after it was ready; the industrial baseline is 150
    row = queries.gains(Project.objects.filter(pk=p.pk))[0]
    assert (row["days"], row["baseline"], row["gained"]) == (15, 150, 135)


def test_the_machine_refuses_every_move_it_does_not_list():
    for state in workflow.State:
        for move in workflow.Move:
            if (state, move) in workflow.MOVES:
                assert workflow.next_state(state, move) == workflow.MOVES[(state, move)]
            else:
                with pytest.raises(workflow.IllegalMove, match=workflow.LABELS[state]):
                    workflow.next_state(state, move)
    assert workflow.project_status(["accepted", "in_use"], filed=False) == "accepted"
    assert workflow.project_status(["accepted", "planned"], filed=False) == "partial"
    assert workflow.project_status(["planned"], filed=False) == "building"


def test_a_template_with_a_mistake_is_refused_with_its_place():
    with pytest.raises(checklists.TemplateError, match="document 或 inspection"):
        checklists.parse("types:\n  x:\n    name: X\n    baseline_days: 10\n    items:\n"
                         "      - {code: a, name: A, kind: photo}\n")
    with pytest.raises(checklists.TemplateError, match="baseline_days"):
        checklists.parse("types:\n  x:\n    name: X\n    items: []\n")
    with pytest.raises(checklists.TemplateError, match="没有项目类型"):
        checklists.parse("types: {}\n")


def test_the_owner_follows_the_project_hands_in_documents_and_raises_a_stuck_step(county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    owner = firm()
    p = register(owner)
    c = portal_client(owner.uscc)
    assert p.name in c.get("/portal/projects/").content.decode()
    assert "还有资料待提交" in c.get("/portal/").content.decode()
    item = p.phases.get(seq=1).items.filter(kind="document").first()
    c.post(f"/portal/projects/{p.code}/act/", {"item": item.pk, "document": SimpleUploadedFile("a.txt", b"plain")})
    assert ChecklistItem.objects.get(pk=item.pk).status == "pending"  # not a PDF or image by its content
    c.post(f"/portal/projects/{p.code}/act/", {"item": item.pk, "document": SimpleUploadedFile("r.pdf", PDF[2])})
    assert ChecklistItem.objects.get(pk=item.pk).status == "submitted"
    phase = p.phases.get(seq=1)
    r = c.post(f"/portal/projects/{p.code}/act/", {"phase": phase.pk, "text": "消防验收预约不上，等了两周"}, follow=True)
    req = ServiceRequest.objects.get(entity=owner, category="construction", text__contains=p.code)
    assert req.number in r.content.decode()
    assert Step.objects.filter(project=p, request=req).exists()
    other = portal_client(Entity.objects.filter(entity_type="enterprise").exclude(uscc=owner.uscc).first().uscc)
    assert other.get(f"/portal/projects/{p.code}/").status_code == 404
    api = c.get("/api/v1/projects").json()
    assert api[0]["code"] == p.code and api[0]["phases"][0]["items"][0]["status"] == "submitted"
    r = c.post(f"/api/v1/projects/{p.code}/phases/2/raise", {"text": "规划核实要什么材料"}, content_type="application/json",
               HTTP_X_CSRFTOKEN="x")
    assert r.status_code == 201 and ServiceRequest.objects.filter(number=r.json()["request_number"]).exists()
    before = ServiceRequest.objects.count(), Step.objects.count()
    r = c.post(f"/api/v1/projects/{p.code}/phases/2/raise", {"text": "规划核实\x07要什么材料"},
               content_type="application/json", HTTP_X_CSRFTOKEN="x")  # a control character: was a 500
    assert r.status_code == 400 and "控制字符" in r.json()["detail"]
    r = c.post(f"/portal/projects/{p.code}/act/", {"phase": phase.pk, "text": "消防" * 2500}, follow=True)
    assert r.status_code == 200 and "最多 4000 字" in r.content.decode()  # the queue's limit: was a 500
    assert (ServiceRequest.objects.count(), Step.objects.count()) == before


def test_the_owner_is_told_once_before_the_filing_deadline_and_the_portal_shows_it(county):
    from qifu.reminders.models import OptOut, OutboxMessage

    owner = firm()
    Entity.objects.filter(pk=owner.pk).update(phone="13905740001", email="")
    p = register(owner)
    accepted = NOW + dt.timedelta(days=6)
    for phase in p.phases.all():
        documents_in(phase)
        actions.do_move(phase, "ready", now=NOW)
        actions.do_move(phase, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
        inspections(phase, at=accepted)
        assert actions.filing_due(p) is None  # a phase still to be accepted
        actions.do_move(phase, "accept", now=accepted)
    assert actions.filing_due(p) == dt.date(2026, 9, 22)  # 15 days after the last acceptance
    assert actions.remind_filings(now=dt.datetime(2026, 9, 16, 9, 30, tzinfo=SH)) == 0  # six days left
    assert actions.remind_filings(now=dt.datetime(2026, 9, 17, 9, 30, tzinfo=SH)) == 1
    m = OutboxMessage.objects.get(key=f"project-filing:{p.code}")
    assert (m.purpose, m.channel, m.recipient, m.entity_id) == ("project", "sms", "13905740001", owner.uscc)
    assert "请于 9月22日前" in m.body and p.name in m.body
    assert actions.remind_filings(now=dt.datetime(2026, 9, 25, 9, 30, tzinfo=SH)) == 0  # once per project
    page = portal_client(owner.uscc).get(f"/portal/projects/{p.code}/").content.decode()
    assert "请于 2026年9月22日前" in page and "已超过期限" in page  # today is long after
    # another owner's project, overdue when it is first seen, and its number opted out: no text
    other = Entity.objects.filter(entity_type="enterprise").exclude(pk=owner.pk).order_by("uscc").first()
    Entity.objects.filter(pk=other.pk).update(phone="13905740002", email="")
    OptOut.objects.create(recipient="13905740002")
    q = register(other, "330282-2026-0009")
    for phase in q.phases.all():
        documents_in(phase)
        actions.do_move(phase, "ready", now=NOW)
        actions.do_move(phase, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
        inspections(phase, at=accepted)
        actions.do_move(phase, "accept", now=accepted)
    assert actions.remind_filings(now=dt.datetime(2026, 10, 9, 9, 30, tzinfo=SH)) == 0
    assert not OutboxMessage.objects.filter(key=f"project-filing:{q.code}").exists()
    Entity.objects.filter(pk=other.pk).update(email="owner@example.com")
    assert actions.remind_filings(now=dt.datetime(2026, 10, 9, 9, 30, tzinfo=SH)) == 1
    m = OutboxMessage.objects.get(key=f"project-filing:{q.code}")
    assert m.channel == "email" and "备案期限 9月22日已过" in m.body
    staff = Client()
    staff.force_login(county["users"]["admin"])
    page = staff.get("/projects/").content.decode()
    pending = page[page.index('id="pending-filings"'):]
    assert p.name in pending and "期限 2026-09-22" in pending and "已逾期" in pending and "已提醒" in pending
    home = staff.get("/").content.decode()
    assert "2 个项目待备案，其中 <strong class=\"warn\">2 个已逾期" in home
    entity = staff.get(f"/entities/{owner.uscc}/").content.decode()  # 一企一档
    assert 'class="filing-due warn">备案期限 2026-09-22（已逾期' in entity[entity.index('id="projects"'):]
    actions.do_file(p, "BA-2026-001", now=dt.datetime(2026, 9, 20, 10, 0, tzinfo=SH))
    assert actions.filing_due(Project.objects.get(pk=p.pk)) is None
    assert "filing-due" not in portal_client(owner.uscc).get(f"/portal/projects/{p.code}/").content.decode()
    assert "filing-due" not in staff.get(f"/entities/{owner.uscc}/").content.decode()


def test_the_owner_is_told_the_inspection_date_and_reminded_the_working_day_before(county):
    from qifu import worker
    from qifu.reminders.models import OutboxMessage

    owner = firm()
    Entity.objects.filter(pk=owner.pk).update(phone="13905740003", email="")
    p = register(owner, "330282-2026-0021")
    phase = p.phases.get(seq=1)
    documents_in(phase)
    actions.do_move(phase, "ready", now=NOW)
    # notified on Tuesday 1 September for Monday 7 September: told at once
    actions.do_move(phase, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    told = OutboxMessage.objects.filter(purpose="project", key__startswith=f"project-inspection:{phase.pk}:")
    set_ = told.get()
    assert (set_.recipient, set_.entity_id) == ("13905740003", owner.uscc)
    assert "已告知质监站，联合验收定于9月7日（周一）" in set_.body and p.name in set_.body and "第1期" in set_.body
    # reminded on the working day before (Friday 4 September, not on the weekend), once
    assert next(j for j in worker.JOBS if j.id == "project_inspections").handler == "qifu.projects.actions:remind_inspections"
    assert actions.remind_inspections(now=dt.datetime(2026, 9, 3, 9, 30, tzinfo=SH)) == 0
    assert actions.remind_inspections(now=dt.datetime(2026, 9, 4, 9, 30, tzinfo=SH)) == 1
    assert actions.remind_inspections(now=dt.datetime(2026, 9, 5, 9, 30, tzinfo=SH)) == 0  # once
    eve = told.exclude(pk=set_.pk).get()
    assert "提醒：" in eve.body and "在9月7日（周一）" in eve.body
    assert actions.remind_inspections(now=dt.datetime(2026, 9, 7, 9, 30, tzinfo=SH)) == 0  # the day itself: too late
    # an inspection failed: after the fix the station is told of a new date, and so is the owner
    inspections(phase, failed=phase.items.filter(kind="inspection").first().code, at=dt.datetime(2026, 9, 7, 15, tzinfo=SH))
    actions.do_move(phase, "rectify", now=dt.datetime(2026, 9, 8, 9, tzinfo=SH))
    fix_all(phase, at=dt.datetime(2026, 9, 8, 15, tzinfo=SH))
    actions.do_move(phase, "notify", inspection_on=dt.date(2026, 9, 15), now=dt.datetime(2026, 9, 9, 9, tzinfo=SH))
    assert told.count() == 3 and "9月15日（周二）" in told.latest("id").body
    assert actions.remind_inspections(now=dt.datetime(2026, 9, 14, 9, 30, tzinfo=SH)) == 1
    # an inspection still ahead is on the owner's portal home
    from django.utils import timezone

    second = p.phases.get(seq=2)
    documents_in(second)
    actions.do_move(second, "ready")
    ahead = timezone.localdate() + dt.timedelta(days=12)
    actions.do_move(second, "notify", inspection_on=ahead)
    home = portal_client(owner.uscc).get("/portal/").content.decode()
    assert f"联合验收：{p.name} 第2期 {ahead.month}月{ahead.day}日" in home[home.index('id="home-todo"'):]
    # an owner reached by neither text nor email is left to staff; nothing is stored
    other = Entity.objects.filter(entity_type="enterprise").exclude(pk=owner.pk).order_by("uscc").first()
    Entity.objects.filter(pk=other.pk).update(phone="", email="")
    q = register(other, "330282-2026-0022")
    documents_in(q.phases.get(seq=1))
    actions.do_move(q.phases.get(seq=1), "ready", now=NOW)
    actions.do_move(q.phases.get(seq=1), "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    assert not OutboxMessage.objects.filter(entity_id=other.uscc, purpose="project").exists()


def test_a_document_promised_under_rongque_lets_the_phase_pass_and_the_filing_waits_for_it(county):
    from qifu.reminders.models import OutboxMessage

    owner = firm()
    Entity.objects.filter(pk=owner.pk).update(phone="13905740004", email="")
    p = register(owner, "330282-2026-0031")
    first = p.phases.get(seq=1)
    late = first.items.filter(kind="document").order_by("id").last()
    for item in first.items.filter(kind="document").exclude(pk=late.pk):
        actions.do_item(item, "submitted", document=PDF, now=NOW)
    with pytest.raises(actions.ProjectActionError, match="资料不齐"):
        actions.do_move(first, "ready", now=NOW)
    due = dt.date(2026, 9, 30)
    for kwargs, why in (({"note": "承诺补交"}, "补交的期限"), ({"due": dt.date(2026, 8, 30), "note": "承诺补交"}, "补交的期限"),
                        ({"due": due}, "承诺的内容")):
        with pytest.raises(actions.ProjectActionError, match=why):
            actions.do_item(late, "promised", now=NOW, **kwargs)
    actions.do_item(late, "promised", due=due, note="企业书面承诺补交", now=NOW)
    with pytest.raises(actions.ProjectActionError, match="已经提交"):
        actions.do_item(first.items.filter(kind="document").first(), "promised", due=due, note="承诺", now=NOW)
    # the phase goes on without it and is accepted
    actions.do_move(first, "ready", now=NOW)
    actions.do_move(first, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    inspections(first, at=dt.datetime(2026, 9, 7, 15, tzinfo=SH))
    actions.do_move(first, "accept", now=dt.datetime(2026, 9, 8, 9, tzinfo=SH))
    second = p.phases.get(seq=2)
    documents_in(second)
    actions.do_move(second, "ready", now=NOW)
    actions.do_move(second, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    inspections(second, at=dt.datetime(2026, 9, 7, 15, tzinfo=SH))
    actions.do_move(second, "accept", now=dt.datetime(2026, 9, 8, 9, tzinfo=SH))
    # the one filing waits for the promised document
    with pytest.raises(actions.ProjectActionError, match="承诺容缺的资料还没有补交.*第1期"):
        actions.do_file(p, "BA-2026-031", now=dt.datetime(2026, 9, 9, 10, tzinfo=SH))
    staff = Client()
    staff.force_login(county["users"]["admin"])
    page = staff.get(f"/projects/{p.code}/").content.decode()
    assert "承诺容缺" in page and "2026-09-30 前补交" in page and 'id="project-file"' not in page
    entity = staff.get(f"/entities/{owner.uscc}/").content.decode()  # 一企一档
    assert f"承诺容缺：第1期“{late.name}”2026-09-30 前补交" in entity[entity.index('id="projects"'):]
    listed = staff.get("/projects/").content.decode()
    assert late.name in listed[listed.index('id="promised-documents"'):] and "期限 2026-09-30" in listed
    # the owner is reminded three days before it is due, once
    assert actions.remind_promises(now=dt.datetime(2026, 9, 26, 9, 30, tzinfo=SH)) == 0
    assert actions.remind_promises(now=dt.datetime(2026, 9, 27, 9, 30, tzinfo=SH)) == 1
    assert actions.remind_promises(now=dt.datetime(2026, 9, 28, 9, 30, tzinfo=SH)) == 0
    told = OutboxMessage.objects.get(key=f"project-promise:{late.pk}:2026-09-30")
    assert told.recipient == "13905740004" and f"“{late.name}”尚未补交，请于 9月30日前" in told.body
    # the owner hands it in from the portal, although the phase is accepted; then the filing goes
    client = portal_client(owner.uscc)
    assert "请于 2026年9月30日前补交" in client.get(f"/portal/projects/{p.code}/").content.decode()
    home = client.get("/portal/").content.decode()
    assert f"承诺容缺：{p.name} 第1期“{late.name}”请于 9月30日前补交" in home[home.index('id="home-todo"'):]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(PDF[0], PDF[2], content_type=PDF[1])
    client.post(f"/portal/projects/{p.code}/act/", {"item": late.pk, "document": upload})
    late.refresh_from_db()
    assert late.status == "submitted" and late.document_name == PDF[0]
    assert 'id="promised-documents"' not in staff.get("/projects/").content.decode()
    assert Step.objects.filter(project=p, action=f"{late.name}：补交承诺容缺的资料").exists()
    actions.do_file(p, "BA-2026-031", now=dt.datetime(2026, 9, 29, 10, tzinfo=SH))
    assert Project.objects.get(pk=p.pk).status == "filed"


def test_each_problem_of_a_failed_inspection_is_fixed_with_a_photo_before_the_phase_is_inspected_again(county):
    import io

    import openpyxl
    from django.core.files.uploadedfile import SimpleUploadedFile

    from qifu.projects.models import Defect
    from qifu.reminders.models import OutboxMessage

    owner = firm()
    Entity.objects.filter(pk=owner.pk).update(phone="13905740005", email="")
    p = register(owner, "330282-2026-0041")
    one = p.phases.get(seq=1)
    documents_in(one)
    actions.do_move(one, "ready", now=NOW)
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    fire = one.items.get(code="fire")
    at = dt.datetime(2026, 9, 7, 15, tzinfo=SH)
    with pytest.raises(actions.ProjectActionError, match="每行一项"):
        actions.do_item(fire, "failed", note=" \n", now=at)
    # one problem per line, the numbering dropped
    actions.do_item(fire, "failed", note="1. 消防通道宽度不足\n2、疏散指示灯不亮\n", now=at)
    defects = Defect.objects.filter(phase=one).order_by("id")
    assert [(d.text, d.status, d.item_id) for d in defects] == [
        ("消防通道宽度不足", "open", fire.pk), ("疏散指示灯不亮", "open", fire.pk)]
    assert Step.objects.filter(project=p, note="问题 2 项：消防通道宽度不足；疏散指示灯不亮").exists()
    for item in one.items.filter(kind="inspection").exclude(pk=fire.pk):
        actions.do_item(item, "passed", now=at)
    actions.do_move(one, "rectify", now=at)
    told = OutboxMessage.objects.get(key__startswith=f"project-rectify:{one.pk}:")
    assert told.recipient == "13905740005" and "需整改 2 项问题" in told.body
    # not inspected again while a problem is still to fix
    with pytest.raises(actions.ProjectActionError, match="还有 2 项问题未整改"):
        actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 14), now=at)
    # the owner sees each problem, reports one fixed with a photo (a PDF or an image, by content)
    client = portal_client(owner.uscc)
    assert "2 项问题待整改" in client.get("/portal/").content.decode()
    page = client.get(f"/portal/projects/{p.code}/").content.decode()
    assert "消防通道宽度不足" in page and "疏散指示灯不亮" in page
    first, second = defects
    client.post(f"/portal/projects/{p.code}/act/", {"defect": first.pk, "document": SimpleUploadedFile("a.txt", b"x")})
    assert Defect.objects.get(pk=first.pk).status == "open"
    client.post(f"/portal/projects/{p.code}/act/", {
        "defect": first.pk, "note": "已拆除堆放物", "document": SimpleUploadedFile("fixed.pdf", PHOTO[2])})
    first.refresh_from_db()
    assert (first.status, first.fixed_note, first.document_name) == ("fixed", "已拆除堆放物", "fixed.pdf")
    phase = client.get("/api/v1/projects").json()[0]["phases"][0]
    assert [(d["text"], d["status"], d["inspection"]) for d in phase["defects"]] == [
        ("消防通道宽度不足", "fixed", fire.name), ("疏散指示灯不亮", "open", fire.name)]
    with pytest.raises(actions.ProjectActionError, match="还有 1 项问题未整改：疏散指示灯不亮"):
        actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 14), now=at)
    staff = Client()
    staff.force_login(county["users"]["admin"])
    assert "整改问题 1 项待整改" in staff.get(f"/entities/{owner.uscc}/").content.decode()
    assert "验收整改问题 1 项待整改" in staff.get("/").content.decode()  # the home dashboard
    listed = staff.get("/projects/").content.decode()
    assert "疏散指示灯不亮" in listed[listed.index('id="open-defects"'):]
    # staff record the other for the owner; the photo is there for the re-inspection
    staff.post(f"/projects/{p.code}/act/", {"defect": second.pk, "document": SimpleUploadedFile("灯.pdf", PHOTO[2])})
    second.refresh_from_db()
    assert second.status == "fixed"
    assert Step.objects.filter(project=p, action="整改：疏散指示灯不亮").latest("id").actor != "企业"
    assert b"".join(staff.get(f"/projects/{p.code}/defects/{first.pk}/").streaming_content) == PHOTO[2]
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 14), now=at)
    # inspected again: one found still not fixed (ticked, open again), the other closed, one new
    again = dt.datetime(2026, 9, 14, 15, tzinfo=SH)
    with pytest.raises(actions.ProjectActionError, match="每行一项"):
        actions.do_item(fire, "failed", keep=[first.pk + 1000], now=again)  # none of its own
    page = staff.get(f"/projects/{p.code}/").content.decode()
    assert f'name="keep" value="{second.pk}"> 仍未整改：疏散指示灯不亮' in page
    staff.post(f"/projects/{p.code}/act/", {"item": fire.pk, "result": "failed", "note": "安全出口标志缺失",
                                            "keep": [str(second.pk)]})
    assert list(Defect.objects.filter(phase=one).values_list("text", "status").order_by("id")) == [
        ("消防通道宽度不足", "closed"), ("疏散指示灯不亮", "open"), ("安全出口标志缺失", "open")]
    assert Step.objects.filter(project=p, note="问题 1 项：安全出口标志缺失；仍未整改 1 项：疏散指示灯不亮").exists()
    actions.do_move(one, "rectify", now=again)
    assert OutboxMessage.objects.filter(key__startswith=f"project-rectify:{one.pk}:").count() == 2
    fix_all(one, at=again)
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 21), now=again)
    actions.do_item(fire, "passed", now=dt.datetime(2026, 9, 21, 15, tzinfo=SH))
    assert set(Defect.objects.filter(phase=one).values_list("status", flat=True)) == {"closed"}
    actions.do_move(one, "accept", now=dt.datetime(2026, 9, 21, 16, tzinfo=SH))
    assert 'id="open-defects"' not in staff.get("/projects/").content.decode()
    book = openpyxl.load_workbook(io.BytesIO(staff.get("/projects/?format=xlsx").content))
    rows = list(book["整改问题"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[5], r[7]) for r in rows] == [(p.code, "消防通道宽度不足", "已销项"), (p.code, "疏散指示灯不亮", "已销项"),
                                                  (p.code, "安全出口标志缺失", "已销项")]


def test_through_the_api_the_owner_hands_in_a_document_and_reports_a_problem_fixed_with_its_photo(county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from qifu.projects.models import Defect

    owner = firm()
    p = register(owner, "330282-2026-0042")
    one = p.phases.get(seq=1)
    c = portal_client(owner.uscc)

    def post(path: str, data: dict):
        return c.post(f"/api/v1/projects/{p.code}/{path}", data, HTTP_X_CSRFTOKEN="x")

    item, *rest = one.items.filter(kind="document").order_by("id")
    listed = c.get("/api/v1/projects").json()[0]["phases"][0]["items"]
    assert {"id": item.pk, "name": item.name, "kind": "document", "status": "pending"} in listed
    r = post(f"items/{item.pk}/document", {"document": SimpleUploadedFile("a.txt", b"plain")})
    assert r.status_code == 400 and "不是图片或 PDF" in r.json()["detail"]
    inspection = one.items.filter(kind="inspection").first()
    assert post(f"items/{inspection.pk}/document", {"document": SimpleUploadedFile("r.pdf", PDF[2])}).status_code == 404
    other = portal_client(Entity.objects.filter(entity_type="enterprise").exclude(uscc=owner.uscc).first().uscc)
    r = other.post(f"/api/v1/projects/{p.code}/items/{item.pk}/document",
                   {"document": SimpleUploadedFile("r.pdf", PDF[2])}, HTTP_X_CSRFTOKEN="x")
    assert r.status_code == 404 and ChecklistItem.objects.get(pk=item.pk).status == "pending"
    r = post(f"items/{item.pk}/document", {"document": SimpleUploadedFile("报告.pdf", PDF[2])})
    assert r.status_code == 200 and r.json() == {"id": item.pk, "name": item.name, "kind": "document", "status": "submitted"}
    assert ChecklistItem.objects.get(pk=item.pk).document_name == "报告.pdf"
    for i in rest:
        actions.do_item(i, "submitted", document=PDF, now=NOW)
    actions.do_move(one, "ready", now=NOW)
    actions.do_move(one, "notify", inspection_on=dt.date(2026, 9, 7), now=NOW)
    fire = one.items.get(code="fire")
    actions.do_item(fire, "failed", note="消防通道宽度不足", now=dt.datetime(2026, 9, 7, 15, tzinfo=SH))
    defect = Defect.objects.get(phase=one)
    assert [d["id"] for d in c.get("/api/v1/projects").json()[0]["phases"][0]["defects"]] == [defect.pk]
    r = post(f"defects/{defect.pk}/fix", {"note": "已拆除堆放物"})
    assert r.status_code == 422 and Defect.objects.get(pk=defect.pk).status == "open"  # no photo
    r = post(f"defects/{defect.pk}/fix", {"note": "已拆除堆放物", "document": SimpleUploadedFile("fixed.pdf", PHOTO[2])})
    assert r.status_code == 200
    got = r.json()
    assert (got["id"], got["status"], got["inspection"], got["fixed_at"] is not None) == (defect.pk, "fixed", fire.name, True)
    defect.refresh_from_db()
    assert (defect.status, defect.fixed_note, defect.document_name) == ("fixed", "已拆除堆放物", "fixed.pdf")
    assert Step.objects.filter(project=p, action="整改：消防通道宽度不足", actor="企业").exists()
    actions.do_item(fire, "passed", now=dt.datetime(2026, 9, 14, 15, tzinfo=SH))  # inspected again: closed
    r = post(f"defects/{defect.pk}/fix", {"document": SimpleUploadedFile("again.pdf", PHOTO[2])})
    assert r.status_code == 400 and "已经销项" in r.json()["detail"]


def test_staff_see_their_township_and_the_construction_department_sees_all(county):
    from qifu.accounts.models import StaffProfile
    from qifu.service_requests.models import CategorySetting, Department

    mine = register(firm(county["own_town"]), "330282-2026-0101")
    theirs = register(firm(county["other_town"]), "330282-2026-0102")
    officer = Client()
    officer.force_login(county["users"]["officer"])
    page = officer.get("/projects/").content.decode()
    assert mine.code in page and theirs.code not in page
    assert officer.get(f"/projects/{theirs.code}/").status_code == 404
    phase = mine.phases.get(seq=1)
    officer.post(f"/projects/{mine.code}/act/", {"phase": phase.pk, "move": "ready"})
    assert Phase.objects.get(pk=phase.pk).state == "planned"  # documents missing: refused, nothing changed
    from django.contrib.auth import get_user_model

    construction = CategorySetting.objects.get(code="construction").department
    clerk = get_user_model().objects.create_user("jianshe")
    StaffProfile.objects.create(user=clerk, role="department", department=construction)
    other = get_user_model().objects.create_user("shuiwu")
    StaffProfile.objects.create(user=other, role="department", department=Department.objects.exclude(pk=construction.pk).first())
    c = Client()
    c.force_login(clerk)
    assert theirs.code in c.get("/projects/").content.decode()
    c.force_login(other)
    assert theirs.code not in c.get("/projects/").content.decode()
    admin = Client()
    admin.force_login(county["users"]["admin"])
    assert 'id="projects-panel"' in admin.get("/").content.decode()
    assert mine.name in admin.get(f"/entities/{mine.entity_id}/").content.decode()
    assert admin.get("/projects/?format=xlsx")["Content-Type"].startswith("application/vnd.openxmlformats")


def test_projects_are_imported_from_the_approval_systems_list_all_or_nothing(county, tmp_path):
    import polars as pl

    from qifu.engine.errors import InvalidFile
    from qifu.imports.actions import import_file

    rows = pl.read_csv(county["folder"] / "projects.csv", infer_schema=False)
    first = import_file("projects", county["folder"] / "projects.csv")
    assert first.inserted == rows.height == Project.objects.count()
    plan = rows.row(0, named=True)["phases"]
    p = Project.objects.get(code=rows["project_code"][0])
    assert p.phases.count() == plan.count("；") + 1 and "\n" in p.phases.get(seq=1).unit_works
    again = import_file("projects", county["folder"] / "projects.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows.height)
    bad = rows.with_columns(
        pl.Series("project_code", [f"NEW-{i:06d}" for i in range(rows.height)]),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("shipyard")).otherwise(pl.col("project_type")).alias("project_type"))
    bad.write_csv(tmp_path / "projects.csv")
    with pytest.raises(InvalidFile) as err:
        import_file("projects", tmp_path / "projects.csv")
    assert [(e.row, e.field) for e in err.value.errors] == [(4, "project_type")]
    assert not Project.objects.filter(code__startswith="NEW-").exists()  # all or nothing


def test_a_long_name_on_the_chart_is_cut_with_an_ellipsis():
    from qifu.text import shorten

    assert shorten("慈溪滨海经济开发区智能家电产业园一期", 14) == "慈溪滨海经济开发区智能家电…"
    assert len(shorten("慈溪滨海经济开发区智能家电产业园一期", 14)) == 14
    assert shorten("新厂房", 14) == "新厂房"
    assert shorten("一二三四五六七八九十一二三四", 14) == "一二三四五六七八九十一二三四"
