import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model

from qifu.imports.actions import import_file
from tests.factories import REGISTRY_HEADER, REPORTS_HEADER, registry_rows, report_rows, write

pytestmark = pytest.mark.django_db


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_page_is_chinese(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "工作人员登录" in response.content.decode()


def test_home_shows_filing_progress_by_township(client, tmp_path):
    import_file("registry", write(tmp_path / "reg.csv", REGISTRY_HEADER, registry_rows()))
    import_file("reports", write(tmp_path / "rep.csv", REPORTS_HEADER, report_rows()[:2]))
    user = get_user_model().objects.create_superuser("admin", password="pw-for-tests-only")
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "2025 年度年报报送进度" in html
    assert "应报 3 户（存续主体），已报 2 户，报送率 <b>66.7%</b>" in html
    assert "浒山街道" in html


def test_login_form_has_csrf_protection(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    get_user_model().objects.create_user("officer", password="pw-for-tests-only")
    response = strict.post("/login/", {"username": "officer", "password": "pw-for-tests-only"})
    assert response.status_code == 403
    assert "页面已过期，请刷新后重试" in response.content.decode()  # a Chinese page, not Django's English one


def test_error_pages_are_chinese_and_say_what_to_do(client, rf):
    from django.core.exceptions import PermissionDenied
    from django.views import defaults

    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "页面不存在" in response.content.decode()
    assert "Not Found" not in response.content.decode()
    request = rf.get("/")
    request.user = get_user_model()(username="x")
    denied = defaults.permission_denied(request, PermissionDenied("只有局管理员可以发放创新券"))
    assert denied.status_code == 403 and "只有局管理员可以发放创新券" in denied.content.decode()
    assert "联系局管理员" in defaults.permission_denied(request, PermissionDenied()).content.decode()
    failed = defaults.server_error(request)
    assert failed.status_code == 500 and "系统出错" in failed.content.decode()
    from django.db import OperationalError

    from qifu.web import busy

    try:  # the site's own handler: any error but SQLite's lock is Django's 500 page
        raise OperationalError("no such table: x")
    except OperationalError:
        failed = busy.server_error(request)
    assert failed.status_code == 500 and "系统出错" in failed.content.decode()
    bad = defaults.bad_request(request, ValueError())
    assert bad.status_code == 400 and "请求无法处理" in bad.content.decode()


def test_the_site_has_its_icon(client):
    """From the package (no CDN), linked from every page; a browser asking /favicon.ico (the
    admin's pages have no link) is sent to it instead of a logged 404."""
    from django.contrib.staticfiles import finders

    assert '<link rel="icon" href="/static/qifu/favicon.svg"' in client.get("/login/").content.decode()
    assert client.get("/portal/login/").content.decode().count('rel="icon"') == 1
    moved = client.get("/favicon.ico")
    assert moved.status_code == 301 and moved["Location"] == "/static/qifu/favicon.svg"
    assert finders.find("qifu/favicon.svg")


def test_healthz(client):
    assert client.get("/healthz").content == b"ok"


@pytest.mark.django_db
def test_a_demo_still_filling_says_how_far_it_has_come_on_every_page(client, tmp_path, monkeypatch):
    from qifu import demo_filling

    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QIFU_DEMO", "1")
    assert "演示数据仍在后台生成" not in client.get("/login/").content.decode()  # nothing being filled
    demo_filling.mark(2, 11, "共享实验室")
    page = client.get("/login/").content.decode()
    assert "演示数据仍在后台生成：第 3 步，共 11 步（共享实验室）" in page and '<progress value="2" max="11">' in page
    assert "模拟到下一申报季" not in page  # not yet played
    assert "演示数据仍在后台生成" in client.get("/portal/login/").content.decode()  # the firms' side too
    demo_filling.mark(6, 11, "申报季演示", failed="OperationalError: database is locked")
    page = client.get("/login/").content.decode()
    assert "演示数据后台生成在“申报季演示”一步出错：OperationalError: database is locked" in page
    assert "演示数据仍在后台生成" not in page
    demo_filling.clear()
    page = client.get("/login/").content.decode()
    assert "演示数据" not in page.replace("演示环境", "") and "模拟到下一申报季的 6 月 20 日" in page
    demo_filling.mark(0, 11, "亩均评价")
    monkeypatch.setenv("QIFU_DEMO", "0")  # a deployment never shows it, whatever its data directory holds
    assert "演示数据仍在后台生成" not in client.get("/login/").content.decode()


def test_demo_prepares_data_and_a_login(tmp_path, monkeypatch, capsys):
    from qifu.demo import run_demo
    from qifu.registry.models import Entity

    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QIFU_DEMO_PASSWORD", "demo-pass-123")
    monkeypatch.setenv("QIFU_BACKUP_DIR", str(tmp_path / "backups"))  # restored after the test
    assert run_demo(entities=300, seed=4, host="127.0.0.1", port=0, serve_app=False) == 0
    out = capsys.readouterr().out
    assert "工作人员登录：用户名 demo  密码 demo-pass-123" in out
    assert Entity.objects.count() == 300
    from qifu.policies.models import Match, Payment

    assert "惠企政策 2025 年度：11 项政策" in out  # the example policies, matched and partly paid
    assert Match.objects.exclude(status="eligible").exists() and Payment.objects.filter(status="paid").exists()
    assert Match.objects.filter(status="declined").exists() and "放弃" in out  # a few firms do not want one
    # and one gave up the rest of a two-stage policy after its first installment went to the treasury
    gave_up = Match.objects.get(gave_up_at__isnull=False)
    assert set(gave_up.payments.values_list("seq", "status")) in ({(1, "paid"), (2, "cancelled")},
                                                                   {(1, "cancelled"), (2, "cancelled")})
    from qifu.experts.models import Cooperation, Pairing
    from qifu.labs.models import Booking, TestBatch
    from qifu.projects.models import Phase

    # shared labs, expert partners and phased acceptance are alive too
    assert Booking.objects.filter(status="booked").exists() and TestBatch.objects.exists()
    assert Booking.objects.exclude(rating="").exists()  # and rated by their firms
    from qifu.labs.models import SampleOrder

    # send-in orders at every step; those waiting for sign-off were tested by another than the demo user
    assert {"submitted", "testing", "review", "issued"} <= set(SampleOrder.objects.values_list("status", flat=True))
    assert not SampleOrder.objects.filter(status="review", tested_by__username="demo").exists()
    assert TestBatch.objects.filter(order__isnull=False).exists()
    # the older reports' samples handed back or disposed of, the latest still at the lab
    issued = SampleOrder.objects.filter(status="issued")
    assert issued.filter(samples_out_at__isnull=False).exists() and issued.filter(samples_out_at__isnull=True).exists()
    # the instrument that needs training is booked by the firms trained on it only
    from django.db.models import F

    from qifu.labs.models import Qualification

    sem = Booking.objects.filter(instrument__needs_training=True)
    assert sem.exists() and not sem.exclude(entity__lab_qualifications__instrument=F("instrument")).exists()
    assert Qualification.objects.exists()
    assert Pairing.objects.filter(status="confirmed").exists() and Cooperation.objects.exists()
    from qifu.experts.models import Achievement, Need

    # and the results library, some firms asking about its results
    assert Achievement.objects.exists() and Need.objects.filter(achievement__isnull=False).exists()
    # the closed season's late filers listed (经营异常名录), some of those who filed since taken off
    from qifu.abnormal.models import Listing

    assert "经营异常名录：2025 年度逾期未报" in out
    assert Listing.objects.filter(status="listed").exists() and Listing.objects.filter(status="removed").exists()
    assert not Listing.objects.filter(status="removed", entity__reports__isnull=True).exists()
    # and one objection annulled, one waiting for its answer in the requests queue
    assert Listing.objects.filter(status="annulled", objection__isnull=False).count() == 1
    assert Listing.objects.filter(status="listed", objection__category="annual_report").count() == 1
    # the written decisions no text or email reached: some served on paper, the rest still to serve
    from qifu.abnormal.queries import unreached

    assert Listing.objects.filter(served_on__isnull=False).exists() and unreached(Listing.objects.all()).exists()
    # a visit found one firm's registered address empty and it was listed; another waits for its decision
    from qifu.abnormal.actions import unreachable_due

    assert "登记住所核查：2 户查无此主体" in out
    from qifu.inspections.models import Inspection, Sample

    by_visit = Listing.objects.filter(ground="unreachable", status="listed", report_year__isnull=True).exclude(
        pk__in=Sample.objects.filter(listing__isnull=False).values("listing_id"))
    assert by_visit.count() == 1
    assert len(unreachable_due()) == 1
    # the closed year's spot checks: a random one mostly checked (one address found empty and one
    # report found false, both listed), and a targeted one drawn from the reports with serious findings
    assert set(Inspection.objects.values_list("kind", flat=True)) == {"random", "targeted"}
    checked = Sample.objects.filter(inspection__kind="random").exclude(result="")
    assert checked.filter(result="ok").exists() and checked.filter(result="unreachable", listing__isnull=False).exists()
    assert checked.filter(result="false_info", listing__ground="false_info").exists()
    # its orders to correct: one followed up as corrected, one listed as not corrected by its last
    # day, one said corrected by the firm and waiting for its follow-up
    assert checked.filter(result="corrected", corrected_on__isnull=False, listing__isnull=True).exists()
    assert checked.filter(result="corrected", listing__ground="uncorrected").exists()
    assert checked.filter(result="corrected", stated_at__isnull=False, corrected_on__isnull=True).exists()
    assert not Sample.objects.filter(inspection__kind="targeted", entity__findings__isnull=True).exists()
    assert not Sample.objects.filter(inspectors__isnull=True).exists() and "年报抽查：抽〔" in out
    # the targeted one is a written check: two firms have sent their payroll, a PDF whose cross-reference
    # table points at its objects; all were told
    from qifu.inspections import actions as inspection_actions
    from qifu.inspections.models import Evidence
    from qifu.reminders.models import OutboxMessage
    from qifu.service_requests import attachments

    written = Inspection.objects.get(kind="targeted", documents_by__isnull=False)
    sent = Evidence.objects.filter(sample__inspection=written)
    assert sent.count() == 2 and "（书面检查，2 户已上传材料，2 户申请延长材料提交期限）" in out
    # the next two asked for more time: one was given a week by its inspector, one waits for an answer
    asked = written.samples.filter(more_time_asked_at__isnull=False)
    granted = asked.get(more_time_answered_at__isnull=False)
    assert granted.documents_due == written.documents_by + dt.timedelta(days=7) and granted.more_time_answer.startswith("同意")
    assert asked.filter(more_time_answered_at__isnull=True).count() == 1
    with attachments.open_stored(sent[0].sha256) as f:
        pdf = f.read()
    table = pdf[int(pdf.rsplit(b"startxref\n", 1)[1].split()[0]):].split(b"\n")
    offsets = [int(line[:10]) for line in table[3:] if line.endswith(b" n ")]
    assert pdf.startswith(b"%PDF-") and len(offsets) == 5
    assert all(pdf[o:].startswith(f"{i} 0 obj".encode()) for i, o in enumerate(offsets, 1))
    assert OutboxMessage.objects.filter(key__startswith="inspection-drawn:").exists()
    assert inspection_actions.tell_drawn() == 0  # told already, and told once
    # with an expert partner who signs in to their own desk
    line = next(x for x in out.splitlines() if x.startswith("专家工作台（"))
    assert line.endswith("用户名 demo-expert  密码 demo-pass-123")
    expert_user = get_user_model().objects.get(username="demo-expert")
    assert Pairing.objects.filter(expert__user=expert_user, status="confirmed").exists()
    tie = expert_user.expert.conflicts.get()  # a firm they declared a tie to, which has needs
    assert tie.entity.tech_needs.exists() and not Pairing.objects.filter(expert__user=expert_user,
                                                                          need__entity=tie.entity).exists()
    # an open need in their line they offered to take, where the demo's needs hold one
    from qifu.experts.actions import open_needs

    offer = Pairing.objects.filter(expert__user=expert_user, volunteered_at__isnull=False).first()
    assert offer is not None or not open_needs(expert_user.expert)
    assert offer is None or (offer.status == "proposed" and offer.need.status == "open" and not offer.need.confidential)
    from qifu.accounts.actions import must_change_password

    assert not must_change_password(expert_user)  # the demo's accounts sign in with its password
    # nightly backups on, and the administrator's dashboard says whether one was made
    from django.test import Client

    admin = Client()
    admin.force_login(get_user_model().objects.get(username="demo"))
    card = admin.get("/").content.decode().split('id="backup-status"')[1].split("</section>")[0]
    # (in this test's open transaction no backup can be made: tests/test_backup.py makes them
    # as `qifu` does, from processes of their own; the demo says so and goes on)
    assert "备份未做：不能在未提交的事务中备份" in out and "最近 36 小时没有新的备份" in card
    # the file (一企一档) of entities with every part the demo has: each exports with its sheets
    import openpyxl

    from qifu.checks.models import Finding
    from qifu.land.models import Result as LandResult
    from qifu.policies.models import Match
    from qifu.reminders.models import ContactTask
    from qifu.service_requests.models import ServiceRequest

    parts = {"科创伙伴": Cooperation.objects.values_list("need__entity_id", flat=True).first(),
             "实验室预约": Booking.objects.filter(batch__isnull=False).values_list("entity_id", flat=True).first(),
             "送检": SampleOrder.objects.values_list("entity_id", flat=True).first(),
             "建设项目": Phase.objects.values_list("project__entity_id", flat=True).first(),
             "惠企政策": Match.objects.values_list("entity_id", flat=True).first(),
             "经营异常名录": Listing.objects.values_list("entity_id", flat=True).first(),
             "亩均评价": LandResult.objects.values_list("entity_id", flat=True).first(),
             "企业诉求": ServiceRequest.objects.filter(entity__isnull=False).values_list("entity_id", flat=True).first(),
             "电话与上门任务": ContactTask.objects.values_list("entity_id", flat=True).first(),
             "校验问题": Finding.objects.values_list("entity_id", flat=True).first()}
    for sheet, uscc in parts.items():
        r = admin.get(f"/entities/{uscc}/", {"format": "xlsx"})
        assert r.status_code == 200 and sheet in openpyxl.load_workbook(io.BytesIO(r.content)).sheetnames, sheet
    from qifu.abnormal.actions import NATIONAL
    from qifu.abnormal.models import Ruling
    from qifu.policies.models import Application
    from tests.factories import portal_client

    # the removals and refusals are decisions in writing, which the firm reads in its portal

    removal = Ruling.objects.filter(kind="remove").select_related("listing").first()
    assert removal is not None and Ruling.objects.filter(kind="refuse").exists()
    # and a failed result disputed, re-tested from the samples the lab kept
    assert SampleOrder.objects.filter(retest_of__conclusion="fail").exists()
    assert not Listing.objects.filter(status="removed").exclude(note=NATIONAL).exclude(rulings__kind="remove").exists()
    r = portal_client(removal.listing.entity_id).get(f"/portal/abnormal/{removal.listing_id}/decision/{removal.pk}/")
    assert r.status_code == 200 and removal.number in r.content.decode() and removal.title in r.content.decode()
    # and a firm's policies through the API: one that applied, one that gave up the rest
    for uscc in (Application.objects.values_list("match__entity_id", flat=True).first(), gave_up.entity_id):
        got = portal_client(uscc).get("/api/v1/policies").json()
        assert got and all(m["status"] and isinstance(m["actions"], list) for m in got)
    assert next(m for m in portal_client(gave_up.entity_id).get("/api/v1/policies").json()
                if m["id"] == gave_up.pk)["gave_up_rest"] is True
    assert Pairing.objects.filter(status="confirmed", answer="accepted").exists()
    assert Phase.objects.filter(state="in_use").exists()
    assert Phase.objects.filter(items__status="promised").exists()  # one report promised under 承诺容缺
    from qifu.projects.models import Defect

    # a phase rectifying after a failed inspection has its problems listed, one fixed so far
    rectifying = Phase.objects.filter(state="rectifying")
    assert rectifying.exists() and all(ph.defects.filter(status="open").exists() for ph in rectifying)
    assert Defect.objects.filter(status="fixed").exists()
    # and part of the next season played under qifu's own reminders and correction notices
    from qifu.accounts.models import AuditEvent
    from qifu.corrections.models import CorrectionNotice
    from qifu.reminders.models import ContactTask, OutboxMessage
    from qifu.reports.models import AnnualReport

    assert "申报季演示（2027 年 1 月 1 日至 06 月 20 日" in out
    filing = OutboxMessage.objects.filter(purpose="filing", planned_for__year=2027)
    assert filing.filter(group="treated").exists() and filing.filter(group="holdout").exists()
    assert filing.filter(channel="call").exists() and not ContactTask.objects.filter(status="open", message__in=filing).exists()
    assert AnnualReport.objects.filter(report_year=2026, filed_at__month__lte=6).count() > 100
    assert CorrectionNotice.objects.filter(report_year=2026).exists()
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    home = client.get("/").content.decode()
    assert "本季 qifu 催报" in home and 'id="saved-vs-holdout"' in home and "口径与明细" in home
    # `qifu demo` says on every page that it is one, and why its dates run ahead of today
    assert 'id="demo-banner"' not in home
    monkeypatch.setenv("QIFU_DEMO", "1")
    assert "有些日期晚于今天" in client.get("/").content.decode()
    assert 'id="demo-banner"' in client.get("/portal/login/").content.decode()
    monkeypatch.delenv("QIFU_DEMO")
    page = client.get("/reminders/season/").content.decode()
    assert "2027 年申报季" in page and "本季采用" in page and 'id="definitions"' in page
    assert client.get("/reminders/season/?format=xlsx")["Content-Type"].startswith("application/vnd.openxml")
    for odd in ("abc", "99999", "-1"):  # a season typed by hand: the current one, not an error
        assert "2027 年申报季" in client.get(f"/reminders/season/?season={odd}").content.decode()
    assert AuditEvent.objects.filter(action="export", detail="申报季提醒成效 2027").exists()
    # a township's officer sees the proof for the township's entities only
    from qifu.registry.models import Township
    from qifu.reminders.report import season_report

    town = Township.objects.get(name="浒山街道")
    officer = Client()
    officer.force_login(get_user_model().objects.get(username="demo-town"))
    mine = officer.get("/reminders/season/").content.decode()
    assert "浒山街道" in mine and "全市" not in mine.split("<h1>")[1].split("</h1>")[0]
    whole, own = season_report(2027), season_report(2027, town=town.code)
    assert 0 < own["groups"]["treated"]["due"] < whole["groups"]["treated"]["due"]
    from qifu.reminders.models import OutboxMessage

    theirs = OutboxMessage.objects.filter(purpose="filing", group="treated", entity__town=town,
                                          planned_for__gte=dt.date(2027, 1, 1), planned_for__lte=dt.date.fromisoformat(own["until"]))
    assert 0 < own["groups"]["treated"]["contacts"] == theirs.count() < whole["groups"]["treated"]["contacts"]
    assert f"<td>{own['groups']['treated']['due']}</td>" in mine
    # a second run finds everything imported and skips it
    run_demo(entities=300, seed=4, host="127.0.0.1", port=0, serve_app=False)
    again = capsys.readouterr().out
    assert "registry：已导入过，跳过" in again and line in again


BUSY = """
import os, sqlite3, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from qifu.service_requests.apikeys import do_issue_key
from qifu.service_requests.models import ServiceRequest
get_user_model().objects.create_user("clerk", password="clerk-pw-for-tests-1")
_, key = do_issue_key("station")
connection.ensure_connection()
with connection.cursor() as cur:
    cur.execute("PRAGMA busy_timeout=300")  # the site waits 10 s for the lock; the test need not
holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
holder.execute("BEGIN IMMEDIATE")  # a bulk import holding the write lock
c = Client(raise_request_exception=False)
login = {"username": "clerk", "password": "clerk-pw-for-tests-1"}
r = c.post("/login/", login)
print(r.status_code, r["Retry-After"], "您的操作没有保存" in r.content.decode())
post = {"service_code": "tax", "description": "发票领用遇到问题", "address_string": "慈溪"}
r = c.post(f"/open311/v2/requests.json?api_key={key}", post)
print(r.status_code, r.json()[0]["code"], "请稍后再试" in r.json()[0]["description"], ServiceRequest.objects.count())
holder.execute("ROLLBACK")  # the import done: the same again goes through
print(c.post("/login/", login).status_code, c.post(f"/open311/v2/requests.json?api_key={key}", post).status_code,
      ServiceRequest.objects.count())
"""


def test_a_write_that_cannot_get_sqlites_lock_in_time_is_told_to_try_again(process_env):
    """While a bulk import holds SQLite's one write lock, a sign-in or a posted request waits its
    turn (busy_timeout) and then fails: the person is told the system is busy and nothing was
    saved (503, Retry-After), on a page or in Open311's errors, never a bare 500."""
    import subprocess
    import sys

    if process_env.get("QIFU_DATABASE_URL"):
        pytest.skip("SQLite's single write lock; PostgreSQL locks rows")
    out = subprocess.run([sys.executable, "-c", BUSY], env=process_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page, api, after = out.stdout.splitlines()[-3:]
    assert page == "503 30 True" and api == "503 503 True 0" and after == "302 200 1", out.stdout
