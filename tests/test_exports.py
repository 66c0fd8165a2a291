"""Background exports (我的导出, `web.export_jobs`): asked for on a long list's page, made by the
worker's job as the person who asked, downloaded by them alone; the file holds exactly what the
direct download holds (rows, township, masking) and the export is audited."""

import datetime as dt
import io

import openpyxl
import pytest
from django.test import Client
from django.utils import timezone

from qifu.accounts.models import AuditEvent
from qifu.registry.models import Entity
from qifu.web import downloads, export_jobs
from qifu.web.models import Export

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(data_dir, monkeypatch):
    monkeypatch.setattr(export_jobs.QUEUE, "recovered", False)
    monkeypatch.setattr(export_jobs, "PROGRESS_EVERY", 0.0)


def client(county, name: str) -> Client:
    c = Client(REMOTE_ADDR="10.1.2.3")
    c.force_login(county["users"][name])
    return c


def rows_of(content: bytes) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True)["市场主体"]
    return list(sheet.iter_rows(values_only=True))


def test_a_long_list_is_made_in_the_background_as_its_direct_download(checked_county, monkeypatch):
    admin = client(checked_county, "admin")
    monkeypatch.setattr(downloads, "LONG_LIST", 10)  # the small county's list counts as long
    page = admin.get("/entities/?type=enterprise").content.decode()
    assert 'id="export-background"' in page and 'value="/entities/export.xlsx?type=enterprise"' in page
    r = admin.post("/exports/new/", {"path": "/entities/export.xlsx?type=enterprise", "rows": "123"}, follow=True)
    assert "已开始在后台生成“市场主体名单（Excel）”" in r.content.decode()
    export = Export.objects.get()
    assert (export.status, export.expected_rows, export.ip) == ("pending", 123, "10.1.2.3")
    listed = admin.get("/exports/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in listed and "排队中" in listed

    assert export_jobs.run_pending() == 1
    export.refresh_from_db()
    n = Entity.objects.filter(entity_type="enterprise").count()
    assert export.status == "done" and export.rows_done == n and export.filename.endswith(".xlsx")
    assert AuditEvent.objects.filter(user=checked_county["users"]["admin"], action="export", ip="10.1.2.3",
                                     detail__startswith=f"市场主体 {n} 行").exists()
    listed = admin.get("/exports/").content.decode()
    assert "refresh" not in listed and f"/exports/{export.pk}/file/" in listed
    got = admin.get(f"/exports/{export.pk}/file/")
    assert got.status_code == 200 and got["Content-Disposition"].startswith("attachment")
    made = rows_of(b"".join(got.streaming_content))
    assert made == rows_of(admin.get("/entities/export.xlsx?type=enterprise").content) and len(made) == n + 1
    assert AuditEvent.objects.filter(action="export", detail="下载后台导出：市场主体名单（Excel）").exists()
    assert export_jobs.run_pending() == 0  # nothing left


def test_only_the_person_who_asked_sees_and_downloads_it_and_an_officer_gets_their_township(checked_county):
    admin, officer = client(checked_county, "admin"), client(checked_county, "officer")
    officer.post("/exports/new/", {"path": "/entities/export.xlsx", "rows": "10"})
    admin.post("/exports/new/", {"path": "/entities/export.csv", "rows": "10"})
    assert export_jobs.run_pending() == 2
    theirs = Export.objects.get(user=checked_county["users"]["officer"])
    mine = Export.objects.get(user=checked_county["users"]["admin"])
    assert admin.get(f"/exports/{theirs.pk}/file/").status_code == 404
    assert f"/exports/{theirs.pk}/file/" not in admin.get("/exports/").content.decode()
    rows = rows_of(b"".join(officer.get(f"/exports/{theirs.pk}/file/").streaming_content))[1:]
    own = checked_county["own_town"]
    assert rows and {r[3] for r in rows} == {own.name}
    assert len(rows) == Entity.objects.filter(town=own).count()
    csv = b"".join(admin.get(f"/exports/{mine.pk}/file/").streaming_content).decode("utf-8")
    assert mine.filename.endswith(".csv") and csv.startswith("\ufeff统一社会信用代码,")
    assert len(csv.strip().splitlines()) == Entity.objects.count() + 1
    # a person without a role, or not signed in, gets nothing
    assert client(checked_county, "noroles").get("/exports/").status_code == 403
    assert Client().get(f"/exports/{mine.pk}/file/").status_code == 302


@pytest.mark.parametrize("path", ["/entities/", "https://example.com/entities/export.xlsx", "entities/export.xlsx",
                                  "/policies/CX-2025-01/?format=html", "/nowhere/", "/exports/new/",
                                  "/entities/export.xlsx?q=" + "x" * 2000])
def test_only_the_named_exports_can_be_asked_for(checked_county, path):
    admin = client(checked_county, "admin")
    r = admin.post("/exports/new/", {"path": path, "rows": "x"}, follow=True)
    assert "导出地址无效" in r.content.decode() or "这个名单不能在后台导出" in r.content.decode()
    assert not Export.objects.exists()


def test_a_person_has_at_most_three_waiting(checked_county):
    admin = client(checked_county, "admin")
    for _ in range(3):
        admin.post("/exports/new/", {"path": "/entities/export.xlsx", "rows": "1"})
    r = admin.post("/exports/new/", {"path": "/entities/export.xlsx", "rows": "1"}, follow=True)
    assert "已有 3 个导出在排队或生成中" in r.content.decode() and Export.objects.count() == 3


def test_a_failed_export_says_why_and_the_next_is_still_made(checked_county):
    admin = client(checked_county, "admin")
    admin.post("/exports/new/", {"path": "/policies/NOPE/?format=xlsx", "rows": "1"})
    admin.post("/exports/new/", {"path": "/entities/export.csv", "rows": "1"})
    assert export_jobs.run_pending() == 2
    failed, made = Export.objects.order_by("pk")
    assert failed.status == "failed" and failed.error == "名单已不存在" and made.status == "done"
    assert "失败" in admin.get("/exports/").content.decode()
    assert admin.get(f"/exports/{failed.pk}/file/").status_code == 404
    # an account that lost its role before its export was made gets no file
    Export.objects.create(user=checked_county["users"]["noroles"], label="x", path="/entities/export.csv")
    export_jobs.run_pending()
    lost = Export.objects.get(user__username="noroles")
    assert (lost.status, lost.error) == ("failed", "账号已无权导出这个名单")


def test_an_export_the_worker_left_running_is_made_again_or_given_up_after_three_tries(checked_county):
    user = checked_county["users"]["admin"]
    again = Export.objects.create(user=user, label="市场主体名单（CSV）", path="/entities/export.csv",
                                  status="running", attempts=1)
    given_up = Export.objects.create(user=user, label="市场主体名单（CSV）", path="/entities/export.csv",
                                     status="running", attempts=3)
    assert export_jobs.run_pending() == 1
    again.refresh_from_db()
    given_up.refresh_from_db()
    assert (again.status, again.attempts) == ("done", 2)
    assert given_up.status == "failed" and "多次中断" in given_up.error


def test_files_are_deleted_after_a_week(checked_county):
    admin = client(checked_county, "admin")
    admin.post("/exports/new/", {"path": "/entities/export.csv", "rows": "1"})
    export_jobs.run_pending()
    export = Export.objects.get()
    path = export_jobs.path_of(export)
    assert path.exists()
    assert export_jobs.expire_old(timezone.now() + dt.timedelta(days=6)) == 0
    assert export_jobs.expire_old(timezone.now() + dt.timedelta(days=8)) == 1
    export.refresh_from_db()
    assert export.status == "expired" and not path.exists()
    assert admin.get(f"/exports/{export.pk}/file/").status_code == 404


def test_progress_is_written_while_the_rows_are(checked_county, monkeypatch):
    """The row count the page shows moves while the export runs, not only at its end."""
    admin = client(checked_county, "admin")
    admin.post("/exports/new/", {"path": "/entities/export.xlsx", "rows": "100"})
    export = Export.objects.get()
    seen = []
    real = export_jobs.Export.objects.filter

    def spy(*args, **kwargs):
        qs = real(*args, **kwargs)
        if kwargs.get("pk") == export.pk:
            seen.append(Export.objects.values_list("rows_done", flat=True).get(pk=export.pk))
        return qs

    monkeypatch.setattr(export_jobs.Export.objects, "filter", spy)
    export_jobs.run_pending()
    assert len({s for s in seen if s}) > 10  # written many times on the way, not once at the end
    n = Entity.objects.count()
    assert max(seen) == n and sorted(seen) == seen  # the list's rows, never its header too
    assert "<progress" not in admin.get("/exports/").content.decode()
    Export.objects.filter(pk=export.pk).update(status="running", rows_done=50)
    assert '<progress max="100" value="50">' in admin.get("/exports/").content.decode()


def test_the_request_queue_too_the_officer_getting_their_township(checked_county, monkeypatch):
    from qifu.service_requests import actions as requests

    towns = checked_county["own_town"], checked_county["other_town"]
    for town in towns:
        for e in Entity.objects.filter(town=town).order_by("uscc")[:3]:
            requests.do_submit_request(text="园区道路积水，货车进不去，请尽快处理", channel="station",
                                       actor=requests.Actor("驿站"), entity=e)
    monkeypatch.setattr(downloads, "LONG_LIST", 1)
    officer = client(checked_county, "officer")
    page = officer.get("/requests/").content.decode()
    assert 'id="export-background"' in page and 'value="/requests/export.xlsx?"' in page
    officer.post("/exports/new/", {"path": "/requests/export.xlsx?", "rows": "3"})
    assert export_jobs.run_pending() == 1
    export = Export.objects.get()
    assert (export.label, export.status, export.rows_done) == ("企业诉求名单（Excel）", "done", 3)
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(officer.get(f"/exports/{export.pk}/file/").streaming_content)),
                                   read_only=True)["企业诉求"]
    rows = list(sheet.iter_rows(values_only=True))[1:]
    assert {r[5] for r in rows} == {checked_county["own_town"].name} and len(rows) == 3


def test_the_request_queue_exports_as_a_workbook_and_as_csv_with_the_same_rows(checked_county):
    import csv

    from qifu.service_requests import actions as requests

    town = checked_county["own_town"]
    for e in Entity.objects.filter(town=town).order_by("uscc")[:2]:
        requests.do_submit_request(text="仓库漏水，请联系13905741234王先生", channel="station",
                                   actor=requests.Actor("驿站"), entity=e)
    requests.do_submit_request(text="园区路灯不亮", channel="hotline", actor=requests.Actor("热线"),
                               entity=Entity.objects.exclude(town=town).order_by("uscc").first())
    officer = client(checked_county, "officer")
    page = officer.get("/requests/").content.decode()
    assert 'href="/requests/export.csv?"' in page
    sheet = openpyxl.load_workbook(io.BytesIO(officer.get("/requests/export.xlsx").content), read_only=True)["企业诉求"]
    book = list(sheet.iter_rows(values_only=True))
    text = b"".join(officer.get("/requests/export.csv").streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == list(book[0]) and len(table) == len(book) == 3  # the officer's township only
    for row, line in zip(book[1:], table[1:], strict=True):
        assert [str(v) if v is not None else "" for v in row][2:9] == line[2:9]
        assert row[0] == line[0] and row[5] == line[5] == town.name and row[3] and row[4]
        assert "13905741234" not in line[13] and "仓库漏水" in line[13] and row[13] == line[13]
    assert AuditEvent.objects.filter(user=checked_county["users"]["officer"], action="export",
                                     detail__startswith="企业诉求 2 行（CSV）").exists()
    assert AuditEvent.objects.filter(detail__startswith="企业诉求 2 行；").exists()


def test_an_unexpected_error_leaves_no_file_and_tells_the_person_plainly(checked_county, monkeypatch):
    from django.http import StreamingHttpResponse

    def broken(rows):
        yield b"\xef\xbb\xbf"
        raise OSError("磁盘已满")

    monkeypatch.setattr(export_jobs, "_answer", lambda export: StreamingHttpResponse(
        broken([]), headers={"Content-Disposition": 'attachment; filename="entities-20261201.csv"'}))
    client(checked_county, "admin").post("/exports/new/", {"path": "/entities/export.csv", "rows": "1"})
    export_jobs.run_pending()
    export = Export.objects.get()
    assert export.status == "failed" and export.error == "生成时出错，请重新申请；再次失败请联系管理员"
    assert not any(export_jobs.folder().glob("*"))


def test_administrators_see_background_exports_in_django_admin_without_their_filters(checked_county):
    from qifu.accounts.actions import assign_role

    asker = checked_county["users"]["officer"]
    export = Export.objects.create(user=asker, label="市场主体名单（CSV）", path="/entities/export.csv?q=王小明",
                                   status="done", rows_done=12)
    user, _ = assign_role("export-admin", "admin")
    password = "export-admin-own-pw"  # past the first password
    user.set_password(password)
    user.save()
    c = Client()
    c.post("/login/", {"username": "export-admin", "password": password})
    listed = c.get("/admin/web/export/").content.decode()
    assert "市场主体名单（CSV）" in listed and asker.username in listed
    shown = c.get(f"/admin/web/export/{export.pk}/change/")
    assert shown.status_code == 200 and "王小明" not in shown.content.decode()
    assert c.post(f"/admin/web/export/{export.pk}/delete/", {"post": "yes"}).status_code == 403
