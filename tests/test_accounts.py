"""账号管理: the administrator opens, changes, resets, disables and enables sign-in accounts on
the back office's own page; a password someone else set is replaced at the first sign-in;
every change is audited and nobody else may make one."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from qifu.accounts.actions import assign_role, must_change_password
from qifu.accounts.models import AuditEvent, StaffProfile
from qifu.experts.models import Expert
from qifu.imports.actions import import_file

pytestmark = pytest.mark.django_db
User = get_user_model()


def signed_in(county, name: str) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def issued(response) -> str:
    """The password the page shows once."""
    assert response.status_code == 200, response.content.decode()[:500]
    found = re.search(r'id="issued-password">([^<]+)<', response.content.decode())
    assert found, "no password shown"
    return found.group(1)


def sign_in(username: str, password: str) -> Client | None:
    """A client signed in through the sign-in page, or None when the page refused."""
    c = Client()
    return c if c.post("/login/", {"username": username, "password": password}).status_code == 302 else None


def change_password(c: Client, old: str, new: str = "my-own-pw-2026-x"):
    return c.post("/password/", {"old_password": old, "new_password1": new, "new_password2": new})


def test_the_administrator_opens_an_account_whose_first_password_is_replaced_at_sign_in(checked_county):
    admin = signed_in(checked_county, "admin")
    town = checked_county["own_town"]
    assert "账号管理" in admin.get("/").content.decode()
    password = issued(admin.post("/accounts/", {"act": "create", "username": "zhuanguan-new", "role": "officer",
                                                "town": town.code}))
    user = User.objects.get(username="zhuanguan-new")
    assert user.staff_profile.role == "officer" and user.staff_profile.town == town and not user.is_staff
    assert must_change_password(user)
    event = AuditEvent.objects.get(action="account", user=checked_county["users"]["admin"])
    assert event.detail == f"新建账号 zhuanguan-new：镇街专管员（{town.name}）"
    page = admin.get("/accounts/").content.decode()
    assert password not in page  # shown once, on the response that made it
    assert "待改初始密码" in page and event.detail in page

    c = sign_in("zhuanguan-new", password)
    for path in ("/", "/entities/", "/requests/", "/admin/", "/exports/"):
        assert c.get(path).url == "/password/", path
    leaving = sign_in("zhuanguan-new", password)
    assert leaving.post("/logout/").status_code == 302 and leaving.get("/").url.startswith("/login/")  # may sign out
    assert "管理员设置的密码" in c.get("/password/").content.decode()
    r = change_password(c, password, password)
    assert r.status_code == 200 and "新密码不能与当前密码相同" in r.content.decode()
    assert c.get("/").url == "/password/"
    assert change_password(c, password).status_code == 302
    assert not must_change_password(User.objects.get(pk=user.pk))
    assert f"工作台 · {town.name}" in c.get("/").content.decode()
    assert "待改初始密码" not in admin.get("/accounts/").content.decode()


def test_only_the_administrator_manages_accounts(checked_county):
    for name in ("officer", "leader"):
        c = signed_in(checked_county, name)
        assert c.get("/accounts/").status_code == 403
        assert c.post("/accounts/", {"act": "create", "username": f"by-{name}", "role": "admin"}).status_code == 403
        assert "账号管理" not in c.get("/").content.decode()
    assert not User.objects.filter(username__startswith="by-").exists()
    assert Client().get("/accounts/").url.startswith("/login/")


@pytest.mark.parametrize("form, error", [
    ({"username": "no-town", "role": "officer"}, "镇街专管员需要指定所属镇街"),
    ({"username": "no-dept", "role": "department"}, "承办部门人员需要指定承办部门"),
    ({"username": "has space", "role": "leader"}, "只能含字母、汉字、数字"),
    ({"username": "a", "role": "leader"}, "2 到 150 个字符"),
    ({"username": "officer", "role": "leader"}, "已被占用"),
    ({"username": "new-one", "role": "superhero"}, "角色应为"),
])
def test_bad_input_says_why_and_creates_nothing(checked_county, form, error):
    admin = signed_in(checked_county, "admin")
    before = User.objects.count()
    r = admin.post("/accounts/", {"act": "create", **form})
    assert r.status_code == 400 and error in r.content.decode()
    assert User.objects.count() == before and not AuditEvent.objects.filter(action="account").exists()
    assert StaffProfile.objects.get(user__username="officer").role == "officer"


def test_a_reset_or_a_disabled_account_ends_its_sessions(checked_county):
    user, _ = assign_role("forgetful", "leader")
    user.set_password("forgetful-old-pw")
    user.save()
    assert not must_change_password(user)  # a password set after the issued one ends the obligation
    theirs = sign_in("forgetful", "forgetful-old-pw")
    assert theirs.get("/").status_code == 200
    admin = signed_in(checked_county, "admin")
    for _ in range(5):  # they forget it and try until the sign-in page locks the account
        assert sign_in("forgetful", "wrong-guess-pw") is None
    assert sign_in("forgetful", "forgetful-old-pw") is None

    new = issued(admin.post("/accounts/", {"act": "reset", "user": user.pk}))
    assert theirs.get("/").url.startswith("/login/")  # the old session ended with the old password
    assert sign_in("forgetful", "forgetful-old-pw") is None
    again = sign_in("forgetful", new)
    assert again.get("/").url == "/password/"
    assert change_password(again, new).status_code == 302 and again.get("/").status_code == 200

    assert admin.post("/accounts/", {"act": "disable", "user": user.pk}).status_code == 302
    assert again.get("/").url.startswith("/login/")
    assert sign_in("forgetful", "my-own-pw-2026-x") is None
    r = admin.post("/accounts/", {"act": "reset", "user": user.pk})
    assert r.status_code == 400 and "已停用" in r.content.decode()
    admin.post("/accounts/", {"act": "enable", "user": user.pk})
    assert sign_in("forgetful", "my-own-pw-2026-x") is not None
    details = list(AuditEvent.objects.filter(action="account").order_by("at", "pk").values_list("detail", flat=True))
    assert details == ["重设 forgetful 的密码", "停用账号 forgetful", "启用账号 forgetful"]


def test_a_session_on_its_own_password_is_not_looked_up_again_until_the_password_changes(checked_county):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def lookups(c: Client, path: str = "/requests/") -> int:
        with CaptureQueriesContext(connection) as seen:
            assert c.get(path).status_code == 200
        return sum("accounts_issuedpassword" in q["sql"] for q in seen.captured_queries)

    user, first = assign_role("steady", "leader")
    c = sign_in("steady", first)
    assert c.get("/requests/").url == "/password/"
    assert change_password(c, first).status_code == 302
    assert lookups(c) == 1 and lookups(c) == 0 and lookups(c, "/") == 0  # looked at once for the session
    # an administrator resets it: the session ends; the new one on the issued password is held again
    new = issued(signed_in(checked_county, "admin").post("/accounts/", {"act": "reset", "user": user.pk}))
    assert c.get("/requests/").url.startswith("/login/")
    again = sign_in("steady", new)
    assert again.get("/requests/").url == "/password/" and again.get("/").url == "/password/"
    assert change_password(again, new, "steady-own-2026-b").status_code == 302
    assert lookups(again) == 1 and lookups(again) == 0

def test_the_last_administrator_stays_and_nobody_disables_themselves(checked_county):
    me = checked_county["users"]["admin"]
    admin = signed_in(checked_county, "admin")
    assert not StaffProfile.objects.filter(role="admin").exclude(user=me).exists()  # the county's one administrator
    r = admin.post("/accounts/", {"act": "disable", "user": me.pk})
    assert r.status_code == 400 and "不能停用自己的账号" in r.content.decode()
    r = admin.post("/accounts/", {"act": "role", "user": me.pk, "role": "leader"})
    assert r.status_code == 400 and "唯一在用的局管理员" in r.content.decode()
    assert StaffProfile.objects.get(user=me).role == "admin" and User.objects.get(pk=me.pk).is_active

    second, _ = assign_role("second-admin", "admin")
    r = admin.post("/accounts/", {"act": "role", "user": second.pk, "role": "officer",
                                  "town": checked_county["other_town"].code})
    assert r.status_code == 302
    second.refresh_from_db()
    assert second.staff_profile.role == "officer" and not second.is_staff and not second.is_superuser
    assert AuditEvent.objects.get(action="account").detail == (
        f"修改 second-admin 的角色：局管理员（全市） → 镇街专管员（{checked_county['other_town'].name}）")


ADMINS_AT_ONCE = """
import os, threading, time, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.db import connection, transaction
from qifu import db
from qifu.accounts import actions

db.ensure_ready()
a, _ = actions.assign_role("admin-a", "admin")
b, _ = actions.assign_role("admin-b", "admin")
holding, release = threading.Event(), threading.Event()
out = {}

def demote(name, by, key, hold):
    try:
        with transaction.atomic():
            actions.assign_role(name, "leader", by=by)
            out[key] = "demoted"
            if hold:  # the first holds its transaction open until the second is waiting
                holding.set()
                release.wait(10)
    except actions.StaffError:
        out[key] = "refused"
    finally:
        connection.close()

first = threading.Thread(target=demote, args=("admin-b", a, "first", True))
first.start()
holding.wait(10)
second = threading.Thread(target=demote, args=("admin-a", b, "second", False))
second.start()
time.sleep(1.5)
release.set()
first.join(); second.join()
left = list(actions._admins().values_list("username", flat=True))
print(out["first"], out["second"], ",".join(sorted(left)))
"""


def test_two_administrators_taking_each_others_role_at_once_leave_one(process_env):
    """The last-administrator rule holds when two administrators demote each other at the same
    moment: the second waits for the first and is refused."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ADMINS_AT_ONCE], env=process_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["demoted", "refused", "admin-a"], out.stdout


def test_a_password_set_in_django_admin_for_someone_else_is_replaced_at_sign_in(checked_county):
    """Django admin's own user pages issue passwords as 账号管理 does: a new account's, and one an
    administrator sets on another's account, must be changed at the holder's first sign-in;
    both are audited. An administrator's own new password there is their own."""
    me = checked_county["users"]["admin"]
    User.objects.filter(pk=me.pk).update(is_staff=True, is_superuser=True)  # as assign_role makes an administrator
    admin = Client()
    admin.force_login(User.objects.get(pk=me.pk))
    typed = "Typed-by-admin-2026"
    r = admin.post("/admin/auth/user/add/", {"username": "houtai-new", "password1": typed, "password2": typed,
                                             "usable_password": "true"})
    assert r.status_code == 302 and "login" not in r.url, r.content.decode()[:2000]
    user = User.objects.get(username="houtai-new")
    assert must_change_password(user)
    StaffProfile.objects.create(user=user, role="leader")  # its role, given on the staff profiles' page
    c = sign_in("houtai-new", typed)
    assert c.get("/").url == "/password/"
    r = change_password(c, typed)
    assert r.status_code == 302, r.content.decode()[-3000:]
    assert not must_change_password(User.objects.get(pk=user.pk))

    again = "Set-again-by-admin-2026"
    r = admin.post(f"/admin/auth/user/{user.pk}/password/", {"password1": again, "password2": again,
                                                              "usable_password": "true"})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert must_change_password(User.objects.get(pk=user.pk))
    assert list(AuditEvent.objects.filter(action="account").order_by("id").values_list("detail", flat=True)) == [
        "在后台管理新建账号 houtai-new", "在后台管理设置 houtai-new 的密码"]

    mine = "Admin-own-new-2026-pw"
    r = admin.post(f"/admin/auth/user/{me.pk}/password/", {"password1": mine, "password2": mine,
                                                            "usable_password": "true"})
    assert r.status_code == 302
    assert not must_change_password(User.objects.get(pk=me.pk))


def test_an_expert_gets_a_desk_from_the_page_and_the_list_exports(checked_county):
    if not Expert.objects.exists():
        import_file("experts", checked_county["folder"] / "experts.csv")
    expert = Expert.objects.filter(user__isnull=True).order_by("code").first()
    admin = signed_in(checked_county, "admin")
    password = issued(admin.post("/accounts/", {"act": "expert", "expert": expert.code, "username": "zhuanjia-page"}))
    expert.refresh_from_db()
    assert expert.user.username == "zhuanjia-page" and must_change_password(expert.user)
    c = sign_in("zhuanjia-page", password)
    assert c.get("/expert/").url == "/password/"
    assert change_password(c, password).status_code == 302 and c.get("/expert/").status_code == 200
    r = admin.post("/accounts/", {"act": "role", "user": expert.user.pk, "role": "leader"})
    assert r.status_code == 400 and "专家工作台的账号" in r.content.decode()

    r = admin.get("/accounts/?format=xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content))["账号"].iter_rows(values_only=True))
    assert rows[0][:4] == ("用户名", "角色", "范围", "状态")
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["zhuanjia-page"][1:3] == ("专家", f"{expert.name}（{expert.code}）")
    assert by_name["officer"][1:3] == ("镇街专管员", checked_county["own_town"].name)
    assert "noroles" not in by_name  # an account with no role signs in to nothing
    assert AuditEvent.objects.filter(action="export", detail=f"账号列表 {len(rows) - 1} 个").exists()


def test_the_administrators_dashboard_says_whether_the_county_is_backed_up(checked_county, monkeypatch, tmp_path):
    import os
    import time

    def card(name="admin") -> str:
        page = signed_in(checked_county, name).get("/").content.decode()
        return page.split('id="backup-status"')[1].split("</section>")[0] if 'id="backup-status"' in page else ""

    monkeypatch.delenv("QIFU_BACKUP_DIR", raising=False)
    assert "没有设置每晚备份" in card()
    assert card("officer") == card("leader") == ""  # the administrator's concern only
    folder = tmp_path / "backups"
    folder.mkdir()
    monkeypatch.setenv("QIFU_BACKUP_DIR", str(folder))
    assert "最近 36 小时没有新的备份" in card()
    old = folder / "qifu-20261101-023000.tar.gz"
    old.write_bytes(b"x" * 2_000_000)
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    assert "最近 36 小时没有新的备份（最近一次" in card()
    (folder / "qifu-20261201-023000.tar.gz").write_bytes(b"x" * 3_000_000)
    shown = card()
    assert "最近一次备份" in shown and "3.0 MB" in shown and "保留最近 2 份" in shown
