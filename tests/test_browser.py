"""The back office and the portal in a real browser: Debian's Chromium driven by Playwright,
against the application under a WSGI server in this process (waitress, so that the pages see the
test database) on loopback, over the checked synthetic county. `qifu serve` itself (Granian) is
tested in tests/test_serve.py.

Everything the browser does is committed (the server runs in its own thread with its own
database connection), so these tests use the module's committed county, not a test transaction.
"""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import openpyxl
import pytest

pytest.importorskip("playwright")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; the ORM calls below are ordinary
# synchronous code, not coroutines.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from qifu.portal import signin  # noqa: E402
from tests.conftest import load_checked_county  # noqa: E402
from tests.mailbox import code_from  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
# The server thread has its own database connection, so each test's data is committed
# (and flushed after the test) rather than held in a test transaction it could not see.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def browser_county_files(tmp_path_factory) -> Path:
    from qifu.engine.synth import county

    out = tmp_path_factory.mktemp("browser-county")
    county.write(out, entities=500, seed=11, last_year=2025)
    return out


@pytest.fixture(scope="module")
def server():
    """The application under waitress on a free loopback port, in this process."""
    from django.db import connections
    from waitress import create_server, wasyncore

    from qifu.wsgi import application

    # The server's threads close their connections after each request, so that none is left
    # open on the test database when it is dropped (PostgreSQL refuses while sessions remain).
    saved = connections.settings["default"]["CONN_MAX_AGE"]
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    srv = create_server(application, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"

    def stop():  # in the server's own thread: sockets closed from here would race its select()
        srv.task_dispatcher.shutdown()
        wasyncore.close_all(srv._map)

    srv.trigger.pull_trigger(stop)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the test server did not stop"
    connections.settings["default"]["CONN_MAX_AGE"] = saved


@pytest.fixture
def site(server, browser_county_files, transactional_db):
    """A checked county of 500 entities with correction notices issued, behind the server.
    Sign-in codes are sent inline (conftest): the in-memory SQLite test database refuses a
    second writer at once instead of waiting, as a real database file does; the background
    path is tested in test_portal.test_a_code_is_sent_after_the_answer."""
    import datetime as dt

    from qifu.corrections import actions as corrections

    county = load_checked_county(browser_county_files)
    corrections.notify(2025, dt.date(2026, 5, 10))
    return server, county


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", accept_downloads=True, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def staff_login(page, base, name):
    page.goto(f"{base}/login/")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(f"{name}-pw-for-tests")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/")


def test_staff_login_and_dashboard_charts(site, page):
    base, _ = site
    staff_login(page, base, "admin")
    expect(page.get_by_role("heading", name="2025 年度年报报送进度")).to_be_visible()
    for chart in ("chart-curve", "chart-towns", "chart-types", "chart-sections", "chart-rules", "chart-channels"):
        assert page.evaluate(f"Chart.getChart('{chart}') !== undefined"), chart
    # the curve has this season and last season
    assert page.evaluate("Chart.getChart('chart-curve').data.datasets.length") == 2
    # every menu item on one line, at the desktop width and on a phone: the items wrap, never a word
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        heights = page.eval_on_selector_all(
            "header.top nav > a, header.top nav > span, header.top .brand",
            "els => els.map(e => [e.textContent.trim(), e.getBoundingClientRect().height,"
            " parseFloat(getComputedStyle(e).lineHeight) || parseFloat(getComputedStyle(e).fontSize) * 1.6])")
        assert len(heights) >= 12 and all(h < 1.5 * line for _, h, line in heights), (width, heights)
    page.set_viewport_size({"width": 1280, "height": 900})
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)


def test_officer_gets_403_for_another_townships_entity(site, page):
    from qifu.registry.models import Entity

    base, county = site
    staff_login(page, base, "officer")
    other = Entity.objects.filter(town=county["other_town"]).first()
    mine = Entity.objects.filter(town=county["own_town"]).first()
    assert page.goto(f"{base}/entities/{other.uscc}/").status == 403
    assert page.goto(f"{base}/entities/{mine.uscc}/").status == 200


def test_entity_page_from_the_list(site, page):
    base, _ = site
    staff_login(page, base, "admin")
    page.goto(f"{base}/entities/?findings=open")
    first = page.locator("tbody tr td a").first
    uscc = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", name="登记信息")).to_be_visible()
    expect(page.get_by_text(uscc).first).to_be_visible()
    expect(page.locator(".finding").first).to_be_visible()
    assert re.search(r"\*{2,}", page.locator("#phone").inner_text() + page.locator("#legal-rep").inner_text())


def test_excel_export_downloads_the_filtered_list(site, page):
    from qifu.registry.models import Entity

    base, _ = site
    staff_login(page, base, "admin")
    page.goto(f"{base}/entities/?type=cooperative")
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 Excel").click()
    data = Path(info.value.path()).read_bytes()
    rows = list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))
    assert len(rows) - 1 == Entity.objects.filter(entity_type="cooperative").count()
    assert {r[2] for r in rows[1:]} == {"农民专业合作社"}


def test_a_long_list_is_made_in_the_background_and_its_page_shows_when_to_download(site, page, monkeypatch, data_dir):
    """The list offers 后台生成 past the long-list line; 我的导出 refreshes itself until the
    worker's job has made the file, then offers it."""
    from qifu.registry.models import Entity
    from qifu.web import downloads, export_jobs

    monkeypatch.setattr(downloads, "LONG_LIST", 10)  # the server runs in this process
    base, _ = site
    staff_login(page, base, "admin")
    page.goto(f"{base}/entities/?type=enterprise")
    page.get_by_role("button", name="后台生成 Excel").click()
    page.wait_for_url(f"{base}/exports/")
    expect(page.get_by_text("已开始在后台生成“市场主体名单（Excel）”")).to_be_visible()
    expect(page.locator("#exports")).to_contain_text("排队中")
    assert export_jobs.run_pending() == 1  # what `qifu worker` does every few seconds
    download = page.get_by_role("link", name="下载")
    expect(download).to_be_visible(timeout=10_000)  # the page refreshed itself
    with page.expect_download() as info:
        download.click()
    rows = list(openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active.iter_rows(values_only=True))
    assert len(rows) - 1 == Entity.objects.filter(entity_type="enterprise").count()
    assert info.value.suggested_filename.startswith("entities-") and info.value.suggested_filename.endswith(".xlsx")


def portal_sign_in(page, base, smtp_server, uscc):
    page.goto(f"{base}/portal/login/")
    page.get_by_label("统一社会信用代码").fill(uscc)
    page.get_by_label("登记的邮箱").check()
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_text("验证码已发送到登记的邮箱")).to_be_visible()
    signin.wait_sent()  # the code goes out from a thread after the answer
    page.get_by_label("6 位验证码").fill(code_from(smtp_server))
    page.get_by_role("button", name="登录").click()


def test_enterprise_signs_in_with_a_code_from_smtp(site, page, smtp_server):
    from qifu.registry.models import Entity

    base, _ = site
    e = Entity.objects.filter(email__contains="@").order_by("-uscc").first()
    portal_sign_in(page, base, smtp_server, e.uscc)
    expect(page.get_by_role("heading", name=e.name)).to_be_visible()
    page.screenshot(path=str(SHOTS / "portal-home.png"), full_page=True)


def test_selfcheck_flags_a_yuan_figure_with_the_suggested_value(site, page, smtp_server):
    from qifu.reports.models import AnnualReport

    base, _ = site
    prev = (AnnualReport.objects.filter(report_year=2024, is_current=True, entity__entity_type="enterprise",
                                        entity__email__contains="@", total_revenue__gte=100)
            .select_related("entity").order_by("entity_id").first())
    portal_sign_in(page, base, smtp_server, prev.entity_id)
    page.goto(f"{base}/portal/selfcheck/")
    wan = round(float(prev.total_revenue) * 1.1, 2)
    page.get_by_label("营业总收入").fill(str(int(wan * 10000)))
    results = page.locator("#results")
    expect(results).to_contain_text("UM-01")  # instant, through the API, before any submit
    expect(results).to_contain_text("建议填写")
    suggestion = float(results.locator(".finding", has_text="UM-01").locator(".suggestion b").inner_text())
    assert suggestion == pytest.approx(wan, rel=1e-6)
    page.screenshot(path=str(SHOTS / "selfcheck.png"), full_page=True)


def test_a_confirmed_value_moves_the_correction_rate(site, browser, smtp_server):
    from qifu.checks.models import Finding

    base, _ = site
    finding = (Finding.objects.filter(notices__isnull=False, status="open", entity__email__contains="@")
               .select_related("entity").order_by("id").first())
    staff = browser.new_context().new_page()
    staff_login(staff, base, "admin")
    staff.goto(f"{base}/corrections/")
    before = staff.locator("#correction-rate").inner_text()

    enterprise = browser.new_context().new_page()
    portal_sign_in(enterprise, base, smtp_server, finding.entity_id)
    card = enterprise.locator(f"#finding-{finding.id}")
    card.get_by_text("数值无误？说明理由").click()
    card.get_by_label("理由").fill("当年承接了一笔大额订单，收入属实，有合同和发票")
    card.get_by_role("button", name="提交说明").click()
    expect(enterprise.get_by_text("已收到您的说明")).to_be_visible()

    staff.reload()
    after = staff.locator("#correction-rate").inner_text()
    assert float(after.rstrip("%")) > float(before.rstrip("%")), (before, after)
    expect(staff.get_by_text("当年承接了一笔大额订单")).to_be_visible()
    staff.context.close()
    enterprise.context.close()


def test_a_request_from_station_to_department_to_rating_moves_the_measures(site, browser, smtp_server):
    """Issue 13's flow: a station officer records a request for an entity of the township; the
    department signs for it and answers; the enterprise rates it in the portal; the measures
    page shows the change."""
    from qifu.accounts.actions import assign_role
    from qifu.registry.models import Entity
    from qifu.service_requests.models import ServiceRequest

    base, county = site
    clerk, _ = assign_role("power-clerk", "department", department="供电、供水、燃气、通信单位")
    clerk.set_password("power-clerk-pw-for-tests")
    clerk.save()
    ent = (Entity.objects.filter(town=county["own_town"], status="active", email__contains="@")
           .order_by("uscc").first())
    admin = browser.new_context().new_page()
    staff_login(admin, base, "admin")
    admin.goto(f"{base}/requests/measures/")
    before = admin.locator("#closure-rate").inner_text()

    officer = browser.new_context().new_page()
    staff_login(officer, base, "officer")
    officer.goto(f"{base}/requests/new/")
    officer.get_by_label("查找主体").fill(ent.uscc)
    officer.get_by_role("button", name="查找").click()
    officer.get_by_role("link", name=ent.name).click()
    officer.get_by_label("诉求内容").fill("园区这周停电三次，注塑机停机，请供电部门尽快排查线路")
    officer.get_by_role("button", name="登记").click()
    expect(officer.get_by_text("诉求已登记")).to_be_visible()
    req = ServiceRequest.objects.get(entity=ent, channel="station")
    assert req.department.name == "供电、供水、燃气、通信单位"

    dept = browser.new_context().new_page()
    staff_login(dept, base, "power-clerk")
    dept.goto(f"{base}/requests/")
    dept.get_by_role("link", name=req.number).click()
    dept.get_by_role("button", name="签收").click()
    expect(dept.locator("#request-status")).to_contain_text("已签收")
    dept.get_by_label("答复内容").fill("已安排供电所本周五更换老化线路，期间临时供电")
    dept.get_by_role("button", name="答复").click()
    expect(dept.locator("#request-status")).to_contain_text("已答复")

    enterprise = browser.new_context().new_page()
    portal_sign_in(enterprise, base, smtp_server, ent.uscc)
    enterprise.goto(f"{base}/portal/requests/{req.number}/")
    expect(enterprise.locator("#request-answer")).to_contain_text("更换老化线路")
    enterprise.get_by_label("满意", exact=True).check()
    enterprise.get_by_role("button", name="提交评价").click()
    expect(enterprise.locator("#request-status")).to_contain_text("已办结")
    enterprise.screenshot(path=str(SHOTS / "request-rated.png"), full_page=True)

    admin.goto(f"{base}/requests/measures/")
    assert admin.locator("#closure-rate").inner_text() != before
    admin.screenshot(path=str(SHOTS / "request-measures.png"), full_page=True)


def test_a_firm_confirms_a_policy_in_the_portal_and_the_first_installment_is_released(site, page, smtp_server, tmp_path):
    import datetime as dt

    from qifu.checks.models import Finding
    from qifu.policies import actions
    from qifu.policies.models import Match, Payment
    from qifu.sources.models import SocialRecord

    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "t.yaml").write_text(
        "id: T-WEB\ntitle: 按时年报企业奖励\nyear: 2025\nmode: automatic\n"
        "eligible: \"entity_type = 'enterprise' AND status = 'active' AND filed_on_time\"\n"
        "amount: \"2.5\"\ninstallments: [0.6, 0.4]\nmilestones: [项目验收]\n", encoding="utf-8")
    actions.match_folder(folder, 2025, now=dt.datetime(2026, 9, 1, 10, tzinfo=dt.UTC))
    m = Match.objects.filter(policy__code="T-WEB", entity__email__contains="@").select_related("entity").first()
    Finding.objects.filter(entity=m.entity).update(status="resolved")
    SocialRecord.objects.filter(entity=m.entity).update(arrears=0)
    base, _ = site
    portal_sign_in(page, base, smtp_server, m.entity_id)
    expect(page.locator("#home-policies")).to_contain_text("按时年报企业奖励")
    page.get_by_role("link", name="按时年报企业奖励").first.click()
    expect(page.locator("#policy-reason")).to_contain_text("按时年报：是")
    page.get_by_label("开户银行").fill("中国农业银行慈溪支行")
    page.get_by_label("银行账号").fill("6228 4801 2345 6789 012")
    page.get_by_role("button", name="确认").click()
    expect(page.locator("#policy-status")).to_contain_text("已确认")
    expect(page.locator("#policy-account")).to_contain_text("6228***********9012")
    expect(page.get_by_text("62284801234567890")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "portal-policy.png"), full_page=True)
    (p1,) = Payment.objects.filter(match=m)
    assert (p1.seq, str(p1.amount.normalize()), p1.status) == (1, "1.5", "due")


def test_an_administrator_tries_a_policy_in_the_browser_then_saves_and_matches_it(site, page):
    from qifu.policies import actions
    from qifu.policies.models import Match, Policy

    base, _ = site
    staff_login(page, base, "admin")
    page.goto(f"{base}/policies/new/")
    page.locator("#policy-text").fill(
        "id: T-BROWSER\ntitle: 按时年报企业奖励\nyear: 2025\nmode: application\n"
        "eligible: \"entity_type = 'enterprise' AND status = 'active' AND filed_on_time\"\namount: \"2.5\"\n")
    page.locator("#policy-trial").click()
    expect(page.locator("#trial")).to_contain_text("试算结果：按时年报企业奖励")
    firms = int(page.locator("#trial-firms").inner_text())
    assert firms > 0 and not Policy.objects.filter(code="T-BROWSER").exists()
    expect(page.locator("#chart-trial-towns")).to_be_visible()
    page.screenshot(path=str(SHOTS / "policy-trial.png"), full_page=True)
    page.locator("#policy-save").click()  # the button pressed still says what to do once disabled
    # saved at once; matched by `qifu worker`, run here, while the page follows it and moves on
    expect(page.locator("#policy-run-steps")).to_contain_text("排队")
    assert re.fullmatch(rf"{re.escape(base)}/policies/runs/\d+/", page.url)
    page.screenshot(path=str(SHOTS / "policy-run.png"), full_page=True)
    assert actions.run_pending_matches() == 1
    expect(page).to_have_url(f"{base}/policies/T-BROWSER/", timeout=15_000)
    expect(page.locator(".flash")).to_contain_text(f"已保存并匹配：符合 {firms} 户")
    assert Match.objects.filter(policy__code="T-BROWSER").count() == firms


def test_a_firm_finds_an_instrument_books_a_slot_with_its_voucher_and_the_lab_sees_it(site, page, smtp_server):
    from django.utils import timezone

    from qifu.imports.actions import import_file
    from qifu.labs import actions
    from qifu.labs.models import Booking
    from qifu.registry.models import Entity

    base, county = site
    import_file("labs", county["folder"] / "labs.csv")
    firm = Entity.objects.filter(entity_type="enterprise", email__contains="@").order_by("uscc").first()
    actions.do_grant_voucher(firm, timezone.localdate().year, "2000")
    actions.do_grant_voucher(firm, timezone.localdate().year + 1, "2000")  # a booking early next year
    portal_sign_in(page, base, smtp_server, firm.uscc)
    page.get_by_role("link", name="共享实验室").first.click()
    expect(page.locator("#lab-voucher")).to_contain_text("剩余 2000.00 元")
    page.get_by_placeholder("如：盐雾试验").fill("镀锌件盐雾试验")
    page.get_by_role("button", name="搜索").click()
    page.locator("#lab-catalogue").get_by_role("link", name="中性盐雾试验箱").first.click()
    expect(page.locator("#lab-week")).to_contain_text("空")
    page.locator("#lab-book").get_by_label("检测内容").fill("镀锌件中性盐雾 48 小时")
    page.get_by_role("button", name="预约").click()
    expect(page.get_by_text(re.compile(r"^已预约 \d{4}-"))).to_be_visible()
    booking = Booking.objects.get(entity=firm)
    expect(page.locator("#lab-bookings")).to_contain_text("镀锌件中性盐雾")
    assert booking.voucher_amount == booking.price / 2 and booking.voucher_amount > 0  # half of 80 yuan an hour
    page.screenshot(path=str(SHOTS / "portal-labs.png"), full_page=True)
    staff_page = page.context.browser.new_context(locale="zh-CN").new_page()
    staff_login(staff_page, base, "admin")
    staff_page.goto(f"{base}/labs/{booking.instrument.lab.code}/")
    expect(staff_page.locator("#lab-upcoming")).to_contain_text(firm.name)
    staff_page.context.close()


def test_the_broker_confirms_an_expert_who_answers_on_their_own_desk(site, page):
    from qifu.experts import actions
    from qifu.experts.models import Need, Pairing
    from qifu.imports.actions import import_file
    from qifu.registry.models import Entity

    base, county = site
    import_file("experts", county["folder"] / "experts.csv")
    firm = Entity.objects.filter(town=county["own_town"], entity_type="enterprise", status="active").order_by("uscc").first()
    need = actions.do_submit_need(firm, "注塑外壳缩痕", "家电注塑外壳表面出现缩痕和翘曲，想请专家做模流分析，优化冷却水路",
                                  Need.Source.STAFF)
    first = need.pairings.order_by("rank").select_related("expert").first()
    _, password = actions.do_open_account(first.expert, "zhuanjia-browser")
    staff_login(page, base, "officer")
    page.goto(f"{base}/experts/needs/{need.number}/")
    page.locator("#pairings tbody tr").first.get_by_role("button", name="确认对接").click()
    expect(page.locator("#pairings tbody tr").first).to_contain_text("待专家在工作台答复")
    desk = page.context.browser.new_context(locale="zh-CN").new_page()
    desk.goto(f"{base}/login/")
    desk.get_by_label("用户名").fill("zhuanjia-browser")
    desk.get_by_label("密码").fill(password)
    desk.get_by_role("button", name="登录").click()
    desk.wait_for_url(f"{base}/password/")  # the first password, issued by staff, is replaced first
    expect(desk.locator("#first-password")).to_be_visible()
    desk.get_by_label("当前密码").fill(password)
    desk.get_by_label("新密码", exact=True).fill("zj-browser-own-2026")
    desk.get_by_label("再输一次新密码").fill("zj-browser-own-2026")
    desk.get_by_role("button", name="修改密码").click()
    desk.wait_for_url(f"{base}/expert/")
    expect(desk.locator("#waiting")).to_contain_text(need.title)
    expect(desk.locator("#waiting")).to_contain_text(firm.name)
    desk.locator("#waiting").get_by_role("button", name="愿意对接").click()
    expect(desk.locator("#answered")).to_contain_text("愿意对接")
    assert Pairing.objects.get(pk=first.pk).answer == "accepted"
    desk.screenshot(path=str(SHOTS / "expert-desk.png"), full_page=True)
    desk.context.close()
    page.reload()
    expect(page.locator("#pairings tbody tr").first).to_contain_text("专家愿意对接")


def test_the_administrator_opens_an_officer_account_whose_holder_sets_their_own_password(site, browser):
    base, county = site
    town = county["own_town"]
    admin = browser.new_context(locale="zh-CN").new_page()
    staff_login(admin, base, "admin")
    admin.get_by_role("link", name="账号管理").click()
    form = admin.locator("#new-account")
    form.get_by_label("用户名").fill("zhuanguan-browser")
    form.get_by_label("角色").select_option(label="镇街专管员")
    form.get_by_label("镇街（镇街专管员必填）").select_option(label=town.name)
    form.get_by_role("button", name="新建").click()
    password = admin.locator("#issued-password").inner_text()
    assert len(password) >= 12
    expect(admin.locator("#accounts")).to_contain_text("待改初始密码")
    admin.screenshot(path=str(SHOTS / "accounts.png"), full_page=True)

    officer = browser.new_context(locale="zh-CN").new_page()
    officer.goto(f"{base}/login/")
    officer.get_by_label("用户名").fill("zhuanguan-browser")
    officer.get_by_label("密码").fill(password)
    officer.get_by_role("button", name="登录").click()
    officer.wait_for_url(f"{base}/password/")
    officer.get_by_label("当前密码").fill(password)
    officer.get_by_label("新密码", exact=True).fill("zg-browser-own-2026")
    officer.get_by_label("再输一次新密码").fill("zg-browser-own-2026")
    officer.get_by_role("button", name="修改密码").click()
    officer.wait_for_url(f"{base}/")
    expect(officer.locator("h1")).to_contain_text(f"工作台 · {town.name}")
    admin.reload()
    expect(admin.locator("#accounts")).not_to_contain_text("待改初始密码")
    expect(admin.locator("#account-events")).to_contain_text("新建账号 zhuanguan-browser")
    admin.context.close()
    officer.context.close()


def test_an_officer_lists_the_late_filers_and_one_that_filed_since_comes_off(site, browser, smtp_server):
    import datetime as dt

    from django.utils import timezone

    from qifu.abnormal import actions
    from qifu.abnormal.models import Listing
    from qifu.reports.models import AnnualReport

    base, county = site
    firm = (actions.candidates(2025).filter(town=county["own_town"], email__contains="@")
            .exclude(reports__report_year=2025).order_by("uscc").first())
    due = actions.candidates(2025).filter(town=county["own_town"]).count()
    staff = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    staff_login(staff, base, "officer")
    staff.goto(f"{base}/abnormal/?year=2025")
    expect(staff.locator("#tile-candidates")).to_have_text(str(due))
    assert staff.evaluate("Chart.getChart('chart-abnormal-years') !== undefined")  # (one township: no chart by township)
    staff.get_by_label("已核对拟列入名单").check()
    staff.get_by_role("button", name=re.compile("作出列入决定")).click()
    expect(staff.locator("ul.flash")).to_contain_text(f"已作出列入决定 {due} 户")
    x = Listing.objects.get(entity=firm, report_year=2025)
    expect(staff.locator(f"#listing-{x.pk}")).to_contain_text("列入中")
    # the firm files late, signs in, and applies; the officer takes it off
    now = timezone.now() - dt.timedelta(days=1)
    AnnualReport.objects.create(entity=firm, report_year=2025, filed_at=now, imported_at=now)
    page = browser.new_context(locale="zh-CN").new_page()
    portal_sign_in(page, base, smtp_server, firm.uscc)
    expect(page.locator("#abnormal")).to_contain_text(x.number)
    page.get_by_role("button", name="申请移出").click()
    by = actions.answer_by(timezone.localdate())  # five working days
    expect(page.locator("#abnormal")).to_contain_text(f"申请移出，市场监管部门将在 {by.month}月{by.day}日 前（5 个工作日内）办理")
    staff.goto(f"{base}/abnormal/?year=2025&status=applied")
    staff.locator(f"#listing-{x.pk}").get_by_role("button", name="移出", exact=True).click()
    expect(staff.locator("ul.flash")).to_contain_text(f"已移出（{x.number}）")
    assert Listing.objects.get(pk=x.pk).status == "removed"
    staff.goto(f"{base}/abnormal/?year=2025")
    staff.screenshot(path=str(SHOTS / "abnormal.png"), full_page=True)
    staff.context.close()
    page.reload()
    expect(page.locator("#abnormal")).to_have_count(0)
    page.context.close()


def test_the_bureau_draws_a_targeted_check_and_the_officer_records_a_false_report(site, browser, smtp_server):
    import datetime as dt

    from django.utils import timezone

    from qifu.abnormal.models import Listing
    from qifu.inspections.models import Inspection, Sample

    base, county = site
    admin = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    staff_login(admin, base, "admin")
    admin.goto(f"{base}/inspections/")
    form = admin.locator("#inspection-draw")
    form.get_by_label("方式").select_option("targeted")
    form.get_by_label("名称").fill("严重校验问题定向抽查")
    form.get_by_label("比例(%)").fill("100")
    form.get_by_label("范围").select_option(county["own_town"].code)
    form.get_by_label("定向条件（仅定向抽查）").fill("open_findings > 0 AND entity_type = 'enterprise'")
    form.get_by_label("书面检查：以短信或邮件告知被抽中的主体上传依据材料").check()  # the day as the form offers it
    form.get_by_role("button", name="抽取").click()
    expect(admin.locator("ul.flash")).to_contain_text("将以短信或邮件告知被抽中的主体上传依据材料")
    x = Inspection.objects.get()
    expect(admin.locator("#inspection-seed")).to_have_text(x.seed)
    assert x.documents_by == timezone.localdate() + dt.timedelta(days=15)
    expect(admin.locator("#inspection-documents-by")).to_have_text(f"{x.documents_by:%Y-%m-%d}")
    s, s2 = (Sample.objects.filter(inspection=x, entity__email__contains="@").select_related("entity")
             .order_by("entity_id")[:2])
    assert s.entity.findings.filter(status="open").exists()
    admin.context.close()
    # the township's officer, sent to it, records what was found: the entity is listed at once
    officer = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    staff_login(officer, base, "officer")
    officer.goto(f"{base}/")
    officer.locator("#inspections-mine-count").click()
    officer.locator(f"#mine-{s.pk} a", has_text=x.number).click()
    row = officer.locator(f"#sample-{s.pk}")
    row.get_by_text("录入检查结果").click()
    row.get_by_label("结果").select_option("false_info")
    row.get_by_label("检查情况").fill("年报从业人数30人，社保参保记录为3人")
    row.get_by_role("button", name="保存").click()
    expect(officer.locator("ul.flash")).to_contain_text("已据此列入经营异常名录")
    listing = Listing.objects.get(entity=s.entity, ground="false_info")
    expect(officer.locator(f"#sample-{s.pk}")).to_contain_text(listing.number)
    # another found wrong but not false: ordered to correct within ten days
    row = officer.locator(f"#sample-{s2.pk}")
    row.get_by_text("录入检查结果").click()
    row.get_by_label("结果").select_option("corrected")
    row.get_by_label("检查情况").fill("年报营业总收入与纳税申报收入不符")
    row.get_by_role("button", name="保存").click()
    expect(officer.locator(f"#sample-{s2.pk}-correction")).to_contain_text("改正期限内")
    officer.screenshot(path=str(SHOTS / "inspection.png"), full_page=True)
    officer.context.close()
    # the firm sees the result and the listing, and applies saying what it corrected
    page = browser.new_context(locale="zh-CN").new_page()
    portal_sign_in(page, base, smtp_server, s.entity_id)
    expect(page.locator(f"#check-{s.pk}")).to_contain_text("公示信息隐瞒真实情况、弄虚作假")
    apply = page.locator(f"#abnormal-apply-{listing.pk}")
    apply.get_by_label("说明").fill("已更正2025年度年报的从业人数")
    apply.get_by_role("button", name="申请移出").click()
    expect(page.locator("#abnormal")).to_contain_text("您已于")
    assert Listing.objects.get(pk=listing.pk).status == "applied"
    page.context.close()
    # the firm ordered to correct says what it corrected; its inspector follows it up
    page = browser.new_context(locale="zh-CN").new_page()
    portal_sign_in(page, base, smtp_server, s2.entity_id)
    said = page.locator(f"#check-{s2.pk}-correction")
    said.get_by_label("已更正的，告诉检查人员更正了什么").fill("已在公示系统更正营业总收入")
    said.get_by_role("button", name="已更正，请复查").click()
    expect(page.locator(f"#check-{s2.pk}")).to_contain_text("您已于")
    page.context.close()
    officer = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    staff_login(officer, base, "officer")
    officer.goto(f"{base}/inspections/{x.pk}/?status=follow_up")
    row = officer.locator(f"#sample-{s2.pk}")
    expect(row).to_contain_text("已在公示系统更正营业总收入")
    expect(row.get_by_role("button", name="逾期未改正，列入经营异常名录")).to_have_count(0)  # still within its days
    row.get_by_label("复查情况").fill("已核对公示系统，营业总收入已更正")
    row.get_by_role("button", name="复查已改正").click()
    expect(officer.locator("ul.flash")).to_contain_text("已改正")
    assert Sample.objects.get(pk=s2.pk).corrected_on is not None
    officer.context.close()
