"""`qifu demo`: a synthetic county, imported and served; the first thing a new user runs."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import Max

from qifu import config, demo_filling
from qifu.checks.actions import run_check
from qifu.checks.models import CheckRun
from qifu.engine import season
from qifu.engine.contract import KINDS
from qifu.engine.rules.loader import ruleset_version
from qifu.engine.synth import county
from qifu.imports.actions import import_file
from qifu.imports.models import ImportRun
from qifu.progress import Bar
from qifu.reports.models import AnnualReport

DEMO_USER = "demo"
DEMO_DEPARTMENT = "经济和信息化局"


def run_demo(entities: int, seed: int, host: str, port: int, serve_app: bool = True) -> int:
    """The county synthesised and its files imported and checked, the staff accounts made; then
    either the other modules' data filled here (``serve_app`` false: a bench, a test) or the
    server started at once, with a second process filling them behind it (every page says how
    far it has come) and the worker started once that process is done. The first page is served
    when the county's files are in: at 240,000 entities, the rest takes longer than all of that."""
    started = time.perf_counter()
    folder = config.data_dir() / f"demo-county-{entities}-seed{seed}"
    demo_filling.clear()  # left by a demo stopped in the middle: this run fills what it had not
    if not (folder / "README.md").exists():
        print(f"生成模拟县域（{entities} 个主体）……", flush=True)
        with Bar("生成") as bar:
            print(county.write(folder, entities=entities, seed=seed, progress=bar.update), flush=True)
    for kind in KINDS:
        path = folder / f"{kind}.csv"
        if not path.exists():  # a county written by an earlier release, before this kind
            print(f"{kind}：模拟县域中没有此文件，跳过", flush=True)
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if ImportRun.objects.filter(kind=kind, sha256=digest).exists():
            print(f"{kind}：已导入过，跳过", flush=True)
            continue
        t = time.perf_counter()
        with Bar(f"导入 {kind}") as bar:
            result = import_file(kind, path, progress=bar.update)
        print(f"{kind}：{result.rows} 行，用时 {time.perf_counter() - t:.1f} 秒", flush=True)
    year = AnnualReport.objects.aggregate(y=Max("report_year"))["y"]
    if year and not CheckRun.objects.filter(report_year=year, ruleset_version=ruleset_version()).exists():
        t = time.perf_counter()
        run = run_check(year).run
        print(f"校验 {year} 年度年报 {run.reports_checked} 份：问题 {run.findings} 个，用时 {time.perf_counter() - t:.1f} 秒", flush=True)
    password = config.get("QIFU_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    staff_accounts(password)
    backups_on()
    if not serve_app:
        fill(folder, entities, seed, password)
        print(f"演示数据已就绪，用时 {time.perf_counter() - started:.0f} 秒。", flush=True)
        print_logins(password)
        return 0
    steps = [name for name, _ in fill_steps(folder, entities, seed, password)]
    filling = start_filling(entities, seed, password, steps)
    print(f"县域数据已导入，用时 {time.perf_counter() - started:.0f} 秒；其余模块的演示数据在后台生成"
          f"（{len(steps)} 步，网页顶部显示进度），生成完后启动定时任务。", flush=True)
    print_logins(password)
    from qifu.web.server import serve

    try:
        serve(host, port)
    finally:
        filling.stop()
    return 0


def staff_accounts(password: str) -> None:
    """The demo's administrator, a township's officer and a department's clerk, each signing in
    with ``password``."""
    from qifu.accounts.actions import assign_role

    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER, defaults={"is_staff": True})
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    assign_role(DEMO_USER, "admin")
    officer, _ = assign_role(f"{DEMO_USER}-town", "officer", "浒山街道")
    officer.set_password(password)
    officer.save()
    clerk, _ = assign_role(f"{DEMO_USER}-dept", "department", department=DEMO_DEPARTMENT)
    clerk.set_password(password)
    clerk.save()


def print_logins(password: str) -> None:
    from qifu.experts.models import Expert
    from qifu.registry.models import Entity

    print(f"工作人员登录：用户名 {DEMO_USER}  密码 {password}", flush=True)
    print(f"镇街专管员（浒山街道）：用户名 {DEMO_USER}-town  密码 {password}", flush=True)
    print(f"承办部门（{DEMO_DEPARTMENT}，企业诉求）：用户名 {DEMO_USER}-dept  密码 {password}", flush=True)
    expert = Expert.objects.filter(user__username=f"{DEMO_USER}-expert").first()
    if expert:
        print(f"专家工作台（{expert.name}，{expert.institution}）：用户名 {DEMO_USER}-expert  密码 {password}", flush=True)
    sample = Entity.objects.filter(findings__status="open", phone__regex=r"^1[3-9][0-9]{9}$").order_by("uscc").first()
    if sample:
        sms = config.data_dir() / "sms"
        print(f"企业端：/portal/ 用统一社会信用代码 {sample.uscc} 登录；开发用短信后端把验证码写在 {sms}/ 下的文件里",
              flush=True)


def fill_steps(folder: Path, entities: int, seed: int, password: str) -> list[tuple[str, Callable[[], None]]]:
    """What the demo fills after the county's files are in, each step named, in this order: the
    season after the others (it lists and checks on their data), the spot checks after the
    season. Each step is skipped when its data are there already."""
    from qifu import demo_season

    def user():
        return get_user_model().objects.get(username=DEMO_USER)

    def latest_year():
        return AnnualReport.objects.aggregate(y=Max("report_year"))["y"]

    def play_season() -> None:
        t = time.perf_counter()
        with Bar("申报季演示") as bar:
            line = demo_season.play(folder, entities, seed, progress=bar.update)
        if line:
            print(f"{line}，用时 {time.perf_counter() - t:.0f} 秒", flush=True)

    def backup() -> None:
        backed_up = first_backup()
        if backed_up:
            print(f"已备份到 {backed_up}；qifu worker 每晚 02:30 再备份一份", flush=True)

    return [
        ("亩均评价", lambda: evaluate_land(user())),
        ("惠企政策", lambda: match_policies(folder, user())),
        ("共享实验室", lambda: use_labs(user())),
        ("科创伙伴", lambda: pair_experts(user())),
        ("分期验收", lambda: accept_projects(user())),
        ("经营异常名录", lambda: list_late_filers(user(), latest_year())),
        ("申报季演示", play_season),
        ("登记住所核查", lambda: find_unreachable(user())),
        ("年报抽查", lambda: draw_inspections(user())),
        ("专家账号", lambda: expert_account(password)),
        ("备份", backup),
    ]


def fill(folder: Path, entities: int, seed: int, password: str,
         mark: Callable[[int, int, str], None] | None = None) -> None:
    """Every module's demo data beside the county's files (``fill_steps``); ``mark(done, total,
    step)`` told as each step starts."""
    steps = fill_steps(folder, entities, seed, password)
    for done, (name, step) in enumerate(steps):
        if mark:
            mark(done, len(steps), name)
        step()


def fill_behind(entities: int, seed: int) -> int:
    """`qifu demo --fill`: the process `run_demo` starts beside its server, filling the modules'
    data and saying at each step how far it has come (``demo_filling``). The password comes in
    ``QIFU_DEMO_PASSWORD``, as the parent chose it."""
    started = time.perf_counter()
    folder = config.data_dir() / f"demo-county-{entities}-seed{seed}"
    password = config.get("QIFU_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    at: list = []

    def mark(done: int, total: int, step: str) -> None:
        at[:] = [done, total, step]
        demo_filling.mark(done, total, step)

    try:
        fill(folder, entities, seed, password, mark)
    except KeyboardInterrupt:  # Ctrl+C reaches the terminal's whole group: the server says it stops
        return 130
    except Exception as e:
        if at:
            demo_filling.mark(*at, failed=f"{type(e).__name__}: {e}")
        raise
    demo_filling.clear()
    print(f"演示数据已全部就绪（后台生成用时 {time.perf_counter() - started:.0f} 秒）。", flush=True)
    if get_user_model().objects.filter(username=f"{DEMO_USER}-expert").exists():
        print(f"专家工作台：用户名 {DEMO_USER}-expert  密码 {password}", flush=True)
    return 0


class Filling:
    """The filling process beside the server, and the worker started when it ends (however it
    ends: a demo half filled still sends what it has). ``stop`` ends both, the server gone."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.worker: subprocess.Popen | None = None
        self.stopped = False
        self.lock = threading.Lock()
        threading.Thread(target=self._then_worker, name="demo-filling", daemon=True).start()

    def _then_worker(self) -> None:
        self.process.wait()
        with self.lock:
            if not self.stopped:
                self.worker = start_worker()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
        for p in (self.process, self.worker):
            if p is not None and p.poll() is None:
                p.terminate()
        for p in (self.process, self.worker):
            if p is not None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        demo_filling.clear()


def start_filling(entities: int, seed: int, password: str, steps: list[str]) -> Filling:
    import sys

    demo_filling.mark(0, len(steps), steps[0])  # the first page shows it, before the process starts
    env = dict(os.environ, QIFU_DEMO="1", QIFU_DEMO_PASSWORD=password)
    process = subprocess.Popen([sys.executable, "-m", "qifu", "demo", "--fill", "--entities", str(entities),
                                "--seed", str(seed)], env=env)
    return Filling(process)


def evaluate_land(user, seed: int = 7) -> None:
    """Each year of land data evaluated with the shipped example method: the earlier year
    published, answered by some firms and frozen (which flags low-efficiency land, some of it
    then in remediation); the latest published, its window open for the firms."""
    import datetime as dt
    import random
    import re

    from django.utils import timezone

    from qifu.land import actions as land
    from qifu.land.models import Evaluation, IndicatorRecord, Remediation, Result

    years = sorted(set(IndicatorRecord.objects.values_list("year", flat=True)))
    if not years or Evaluation.objects.exists():
        return
    example = (Path(__file__).resolve().parent / "data" / "land" / "method-example.yaml").read_text(encoding="utf-8")
    rng = random.Random(seed)
    now = timezone.now()
    for year in years:
        text = re.sub(r"(?m)^year: \d+", f"year: {year}", example)
        latest = year == years[-1]
        when = now if latest else now - dt.timedelta(days=30)
        t = time.perf_counter()
        evaluation = land.evaluate_text(year, text, "示例方法", now=when).evaluation
        land.do_publish(evaluation, now=when)
        results = list(Result.objects.filter(evaluation=evaluation).exclude(klass="").select_related("evaluation").order_by("id"))
        confirmed = set()
        for r in rng.sample(results, k=len(results) // 3):
            land.do_confirm(r, now=when + dt.timedelta(days=1))
            confirmed.add(r.pk)
        if latest:
            pending = [r for r in results if r.pk not in confirmed and r.klass in ("C", "D")]
            for r in rng.sample(pending, k=min(3, len(pending))):
                land.do_object(r, "evaluated_tax", "我公司该年度实缴税收比评价税收多，请税务部门核实", now=when)
        else:
            land.do_freeze(evaluation, user, now=when + dt.timedelta(days=8))
        print(f"亩均评价 {year} 年度：{evaluation.firms} 户，{evaluation.get_status_display()}，"
              f"用时 {time.perf_counter() - t:.1f} 秒", flush=True)
    cases = list(Remediation.objects.order_by("parcel_id"))
    for case in rng.sample(cases, k=len(cases) // 3):
        plan = rng.choice(["upgrade", "upgrade", "merge", "buy_back", "m0"])
        land.do_update_case(case, user, plan=plan, status="ongoing", milestone=("签订整治协议", None),
                            note="演示：镇街已约谈企业")
        if rng.random() < 0.4:
            land.do_update_case(case, user, status="done", done_milestone=0, note="演示：整治完成")


def match_policies(folder: Path, user, seed: int = 9) -> None:
    """The county's example policies matched on the latest year three weeks ago; since then
    some firms confirmed their accounts or applied, departments reviewed, and two payment batches
    went to the treasury and came back (one line failed), so that the measures have something
    to show. Skipped when policies were matched before."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.policies import actions as policies
    from qifu.policies.models import Application, Match, Payment, Policy

    if Match.objects.exists() or not (folder / "policies").is_dir():
        return
    year = AnnualReport.objects.aggregate(y=Max("report_year"))["y"]
    rng = random.Random(seed)
    start = timezone.now() - dt.timedelta(days=21)
    t = time.perf_counter()
    r = policies.match_folder(folder / "policies", year, now=start)
    print(f"惠企政策 {year} 年度：{len(r.outcomes)} 项政策，符合 {r.matches} 户次，通知 {r.notified} 户，"
          f"用时 {time.perf_counter() - t:.1f} 秒", flush=True)
    for code in sorted(set(Match.objects.values_list("policy__code", flat=True))):
        ms = list(Match.objects.filter(policy__code=code).select_related("policy", "entity").order_by("entity_id"))
        taken = rng.sample(ms, k=min(len(ms), max(1, len(ms) * 2 // 3), 150))
        chosen = {m.pk for m in taken}
        rest = [m for m in ms if m.pk not in chosen]
        for m in rng.sample(rest, k=len(rest) // 8):  # a few firms do not want it
            policies.do_decline(m, rng.choice(["", "暂不需要", "已享受同类政策"]),
                                now=start + dt.timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 8)))
        for m in taken:
            when = start + dt.timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 8))
            account = "6228" + "".join(rng.choice("0123456789") for _ in range(15))
            if m.policy.mode == "automatic":
                policies.do_confirm(m, rng.choice(["中国农业银行慈溪支行", "中国工商银行慈溪支行", "慈溪农商银行"]), account,
                                    m.entity.name, now=when)
            else:
                app = policies.do_apply(m, "本公司研发中心已通过认定，研发投入情况见附件审计报告。", project="企业研发中心",
                                        bank=("宁波银行慈溪支行", account, m.entity.name), now=when)
                if rng.random() < 0.7:
                    policies.do_review(app, rng.random() < 0.85, "材料齐全，符合条件" if rng.random() < 0.85 else "认定文件不全",
                                       user, now=when + dt.timedelta(days=3))
    # one firm of a two-stage policy (the first installment on confirming, the rest on a
    # milestone) is paid its first, then stops its project and gives up the rest (below); staff
    # release it first if it was held
    staged = [p.pk for p in Policy.objects.all() if len(p.installments or []) > 1]
    stops = Match.objects.filter(policy__in=staged, status__in=("confirmed", "held")).order_by("entity_id").first()
    if stops is not None and stops.status == "held":
        policies.do_release_hold(stops, user, "已线下核实，同意拨付", now=start + dt.timedelta(days=10))
    for day in (12, 17):
        try:
            batch = policies.do_create_batch(user, now=start + dt.timedelta(days=day))
        except policies.PolicyActionError:
            continue
        lines = list(Payment.objects.filter(batch=batch).order_by("id"))
        answer = [{"batch_no": batch.number, "payment_id": str(p.id), "status": "paid",
                   "paid_on": (start + dt.timedelta(days=day + rng.randint(2, 4))).date().isoformat()} for p in lines]
        if answer:
            answer[0].update(status="failed", reason="账户名称与开户名不符")
        policies.do_reconcile(batch.number, answer, now=start + dt.timedelta(days=day + 5))
    # the firm that stops: its department had approved the milestone, then the firm says by
    # telephone that the project has stopped and gives up the rest (放弃其余资金)
    if stops is not None:
        reached = start + dt.timedelta(days=18)
        policies.do_reach_milestone(stops, 2, stops.policy.department or "主管部门", now=reached)
        stops.refresh_from_db()
        if stops.status == "held":  # a check before paying failed again: staff review it
            policies.do_release_hold(stops, user, "项目验收通过，已线下核实，同意拨付", now=reached)
        policies.do_decline(stops, "企业来电：研发项目已终止，不再申请验收", now=start + dt.timedelta(days=19), by=user)
    print(f"惠企政策兑现：已确认或申请 {Match.objects.exclude(status__in=('eligible', 'lapsed', 'declined')).count()} 户次，"
          f"放弃 {Match.objects.filter(status='declined').count()} 户次，"
          f"申请 {Application.objects.count()} 份，已到账 {Payment.objects.filter(status='paid').count()} 笔", flush=True)


def use_labs(user, seed: int = 11) -> None:
    """Sixty days of shared-lab use: vouchers for forty manufacturers, bookings made over the
    past two months (most tested, with a batch and a report number, a few cancelled) and some
    for the coming weeks, most tested ones rated by their firms, one instrument closed two days for
    calibration, so that the catalogue, the measures and the firms' pages show life.
    Skipped when there are bookings already, or no catalogue."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.labs import actions as labs
    from qifu.labs.models import Booking, Instrument
    from qifu.registry.models import Entity

    instruments = list(Instrument.objects.select_related("lab").order_by("lab__code", "code"))
    if Booking.objects.exists() or not instruments:
        return
    rng = random.Random(seed)
    firms = list(Entity.objects.filter(entity_type="enterprise", status="active", industry_code__startswith="C")
                 .order_by("uscc")[:2000])
    if not firms:
        return
    firms = rng.sample(firms, k=min(len(firms), 120))
    year = timezone.localdate().year
    for f in firms[:40]:
        labs.do_grant_voucher(f, year, rng.choice([5000, 10000, 20000, 30000]), "0.5", by=user)
    today = timezone.localdate()
    trained = {}  # a few firms trained on each instrument that needs it; only they book it
    for inst in [i for i in instruments if i.needs_training]:
        trained[inst.pk] = rng.sample(firms, k=3)
        for f in trained[inst.pk]:
            labs.do_qualify(f, inst, today + dt.timedelta(days=rng.choice([180, 365])), "操作培训并考核合格", by=user,
                            now=timezone.now() - dt.timedelta(days=rng.randint(70, 120)))
    made = tested = 0
    for n in range(400):
        inst = rng.choice(instruments)
        firm = rng.choice(trained.get(inst.pk, firms))
        day = today + dt.timedelta(days=rng.randint(-60, 20))
        starts = labs.day_slots(inst, day)
        if not starts:
            continue
        k = rng.randint(1, min(3, len(starts)))
        start = rng.choice(starts[: len(starts) - k + 1])
        booked_at = start - dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(1, 6))
        try:
            b = labs.do_book(firm, inst, start, k, rng.choice(["来料检验", "出口认证前摸底", "新品型式试验", "客户投诉复测",
                                                                "工艺改进对比试验"]) + "：" + inst.name,
                             channel=rng.choice(["portal", "portal", "staff"]), now=booked_at)
        except labs.LabActionError:
            continue
        made += 1
        if b.status == "pending" and (start.date() < today or rng.random() < 0.6):  # the lab confirmed most
            b = labs.do_confirm(b, by=user, now=min(booked_at + dt.timedelta(hours=rng.randint(2, 20)), timezone.now()))
        if start.date() < today and rng.random() < 0.9:
            labs.do_record_batch(b, timezone.localtime(start).date(), inst.capabilities.split()[0],
                                 rng.randint(1, 12), f"R{start:%y%m%d}-{n:04d}", rng.choice(["pass"] * 8 + ["fail", "data"]),
                                 by=user)
            tested += 1
            if rng.random() < 0.6:  # most firms rate the service
                rating = rng.choice(["satisfied"] * 7 + ["basically"] * 2 + ["dissatisfied"])
                labs.do_rate(b, rating, "报告出具比约定晚了两天" if rating == "dissatisfied" else "",
                             now=start + dt.timedelta(days=rng.randint(2, 6)))
        elif rng.random() < 0.1:
            labs.do_cancel(b, "企业改期", by=user, staff=True, now=booked_at + dt.timedelta(hours=2))
    waits = 0  # other firms waiting (候补) for some of the coming weeks' full slots
    future = Booking.objects.filter(status="booked", start__gt=timezone.now() + dt.timedelta(days=2))
    for b in future.select_related("instrument__lab").order_by("start")[:12]:
        try:
            labs.do_wait(rng.choice([f for f in firms if f.uscc != b.entity_id]), b.instrument, b.start, 1,
                         rng.choice(["来料检验", "新品型式试验"]) + "：" + b.instrument.name)
            waits += 1
        except labs.LabActionError:
            continue  # a unit still free, or the firm already waits for five
    # one instrument closed two days for its yearly calibration: its firms are told
    inst = rng.choice(instruments)
    first = today + dt.timedelta(days=rng.randint(8, 14))
    _, off, _ = labs.do_close(inst.lab, first, first + dt.timedelta(days=1), "设备年度校准", instrument=inst, by=user)
    sent = send_samples(user, rng, firms, today)
    print(f"共享实验室：{len(instruments)} 台仪器，预约 {made} 次，检测 {tested} 批次，候补 {waits} 条，创新券 40 家，"
          f"送检 {sent} 份；{inst.name} {first:%m月%d日}起停开放两天（校准），取消预约 {off} 个", flush=True)


SAMPLES = [("空调压缩机支架", "中性盐雾 48 小时", "GB/T 10125-2021"), ("电饭煲内胆涂层", "涂层附着力、耐磨", "GB/T 9286-2021"),
           ("汽车转向节", "尺寸测量、硬度", ""), ("深沟球轴承 6204", "振动、噪声", "JB/T 7047-2006"),
           ("小家电电源板", "传导发射、辐射发射", "GB 4343.1-2018"), ("注塑外壳", "阻燃等级", "GB/T 2408-2021"),
           ("紧固件镀锌层", "镀层厚度、中性盐雾 96 小时", "GB/T 5267.1-2023")]


def send_samples(user, rng, firms, today) -> int:
    """Send-in orders (送检) at every step: issued reports of the past two months (the older ones'
    samples handed back or disposed of, the latest still at the lab), results waiting for the
    demo user to sign off (entered by the lab's tester, so that the demo user is the second
    person), samples being tested or still to be received, and one refused."""
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from qifu.labs import actions as labs
    from qifu.labs.models import Lab

    tester, made = get_user_model().objects.get_or_create(username=f"{DEMO_USER}-lab",
                                                          defaults={"first_name": "实验室检测员"})
    if made:
        tester.set_unusable_password()
        tester.save()
    pdf = demo_pdf(["Test report (synthetic demo document)"])
    labs_open = list(Lab.objects.filter(active=True).order_by("code"))
    n = 0
    retested = False
    for i in range(36):
        firm = rng.choice(firms)
        name, items, standard = rng.choice(SAMPLES)
        found = labs.search(f"{name} {items}", limit=3)  # a lab that does such tests
        lab = rng.choice([inst.lab for inst, _ in found]) if found else rng.choice(labs_open)
        ago = rng.randint(0, 60)
        at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=ago),
                                                     dt.time(rng.randint(8, 16), rng.choice([0, 15, 30, 45]))))
        at = min(at, timezone.now() - dt.timedelta(minutes=5))
        try:
            o = labs.do_order(firm, lab, name, rng.randint(1, 6), items, standard, rng.choice(["return", "dispose"]),
                              channel=rng.choice(["portal", "portal", "staff"]), by=user if i % 3 == 2 else None, now=at)
            n += 1
            if ago < 2:
                continue  # still to be received
            at += dt.timedelta(days=1)
            if i % 17 == 5:
                labs.do_reject(o, "样品数量不足，按标准至少需 3 件", by=tester, now=at)
                continue
            labs.do_receive(o, rng.choice(["包装完好，标识清楚，数量相符", "外包装轻微破损，样品完好"]),
                            rng.choice([200, 350, 480, 800, 1200]), by=tester, now=at)
            if ago < 6:
                continue  # being tested
            at += dt.timedelta(days=rng.randint(2, 4))
            labs.do_result(o, timezone.localtime(at).date(), rng.choice(["pass"] * 6 + ["fail", "data"]),
                           f"S{timezone.localtime(at):%y%m%d}-{o.pk:04d}", ("检测报告.pdf", "application/pdf", pdf),
                           by=tester, now=at)
            if ago < 10:
                continue  # waiting for a second person: the demo user
            issued = at + dt.timedelta(days=1)
            o = labs.do_review(o, True, by=user, now=issued)
            if o.conclusion == "fail" and not retested:  # the firm disputes it: a re-test of the samples kept
                retest = labs.do_retest(o, "我司自检结果合格，对检测结论有异议，申请用留样复检",
                                        now=min(issued + dt.timedelta(days=2), timezone.now()))
                retested = True
                if ago >= 16:  # the lab has taken the kept samples in for it
                    labs.do_receive(retest, "留样封存完好，与原委托一致", 0, by=tester,
                                    now=min(issued + dt.timedelta(days=3), timezone.now()))
            elif ago >= 14:  # the samples gone back (by courier, or collected), or disposed of after the retention
                back = o.after_test == "return"
                how = rng.choice([f"顺丰快递 SF{rng.randint(10 ** 11, 10 ** 12 - 1)}", "企业业务员自取"])
                out = issued + dt.timedelta(days=rng.randint(1, 3) + (0 if back else o.retain_days))
                if out < timezone.now():
                    labs.do_samples_out(o, how if back else "", by=tester, now=out)
            if rng.random() < 0.6:  # most firms rate the service
                rating = rng.choice(["satisfied"] * 7 + ["basically"] * 2 + ["dissatisfied"])
                labs.do_rate(o, rating, "收样后一周才开始检测" if rating == "dissatisfied" else "",
                             now=min(at + dt.timedelta(days=rng.randint(2, 5)), timezone.now()))
        except labs.LabActionError:
            continue
    return n


NEEDS = [
    ("注塑外壳缩痕", "家电注塑外壳表面缩痕和翘曲，想请专家做模流分析，优化冷却水路"),
    ("电源板EMC整改", "小家电电源板传导发射超标，出口认证不过，需要电磁兼容整改方案"),
    ("转向节尺寸不稳定", "汽车转向节精密加工尺寸波动大，想做公差分析和工艺改进"),
    ("镀锌件盐雾不过关", "紧固件镀锌层盐雾试验达不到 96 小时，想改进表面处理工艺"),
    ("电机降噪", "洗衣机直驱电机噪声偏大，客户投诉，想做振动噪声分析"),
    ("数字化车间", "想上 MES 做数字化车间，设备联网采集数据，不知道从哪里做起"),
    ("轴承异音", "深沟球轴承异音返修多，想做失效分析和润滑改进"),
    ("阻燃改性", "改性 PP 阻燃达不到 UL94 V0，想优化材料配方"),
    ("杨梅保鲜", "杨梅深加工产品保鲜期太短，想改进保鲜工艺"),
    ("视觉检测", "装配线想用机器人和机器视觉检测替代人工目检"),
]


def pair_experts(user, seed: int = 13) -> None:
    """A season of expert partnering: thirty needs from manufacturers over the past four months,
    most with an expert confirmed and a visit, a few with a cooperation project agreed and some
    of those completed. Skipped when there are needs already, or no expert library."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.experts import actions as experts
    from qifu.experts.models import Expert, Need
    from qifu.registry.models import Entity

    if Need.objects.exists() or not Expert.objects.exists():
        return
    rng = random.Random(seed)
    firms = list(Entity.objects.filter(entity_type="enterprise", status="active", industry_code__startswith="C")
                 .order_by("uscc")[:3000])
    if not firms:
        return
    today = timezone.localdate()
    agreed = 0
    for _ in range(30):
        title, text = rng.choice(NEEDS)
        when = timezone.now() - dt.timedelta(days=rng.randint(3, 120), hours=rng.randint(0, 8))
        need = experts.do_submit_need(rng.choice(firms), title, text, rng.choice(["staff", "portal"]),
                                      urgent=rng.random() < 0.15, confidential=rng.random() < 0.2, by=user, now=when)
        pairing = need.pairings.order_by("rank").first()
        if pairing is None or rng.random() < 0.2:
            continue
        experts.do_decide(pairing, True, by=user)
        if rng.random() < 0.15:  # still waiting for the expert's answer on their desk
            continue
        experts.do_answer(pairing, pairing.expert, True, now=when + dt.timedelta(days=1))
        visited = min(today, timezone.localtime(when).date() + dt.timedelta(days=rng.randint(2, 20)))
        experts.do_log_visit(need.entity, visited, "专家随科技专员上门，现场查看产线并交流", need=need, expert=pairing.expert, by=user)
        if rng.random() < 0.4:
            coop = experts.do_agree(need, pairing.expert, f"{title}技术合作", visited, str(rng.choice([5, 8, 15, 30])),
                                    [("方案评审", visited + dt.timedelta(days=30)), ("验收", visited + dt.timedelta(days=90))])
            agreed += 1
            if visited + dt.timedelta(days=30) <= today:
                experts.do_reach_milestone(coop, 0, visited + dt.timedelta(days=28))
            if rng.random() < 0.3:
                experts.do_finish(coop, "问题解决，已在产线应用")
                if rng.random() < 0.8:  # most firms rate the project once it has ended
                    grade = rng.choices(["satisfied", "basically", "dissatisfied"], [6, 3, 1])[0]
                    experts.do_rate(coop, grade, "专家来得少，方案落地慢" if grade == "dissatisfied" else "",
                                    now=timezone.now())
    from qifu.experts.models import Achievement

    asked = 0  # a few firms asked to know more about a result of the library (我想了解)
    for a in Achievement.objects.filter(public=True).order_by("code")[:6]:
        when = timezone.now() - dt.timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 8))
        experts.do_ask_about(rng.choice(firms), a, "想了解这项成果能否用在我们的产品上，转化费用大概多少", now=when)
        asked += 1
    print(f"科创伙伴：技术需求 {30 + asked} 条（其中了解科技成果 {asked} 条），合作项目 {agreed} 个", flush=True)


def expert_account(password: str):
    """The demo's expert partner: the one with the most confirmed pairings (one still waiting
    for their answer first), signing in as ``DEMO_USER``-expert with the demo's password, with
    a tie declared to a firm that has needs (利益回避) and, where an open need is in their line,
    the best one offered to take (专家自荐)."""
    from django.db.models import Count, Q

    from qifu.experts import actions as experts
    from qifu.experts.models import Expert

    username = f"{DEMO_USER}-expert"
    expert = Expert.objects.filter(user__username=username).first()
    if expert is None:
        expert = (Expert.objects.filter(user__isnull=True).annotate(
            waiting=Count("pairings", filter=Q(pairings__status="confirmed", pairings__answer="")),
            confirmed=Count("pairings", filter=Q(pairings__status="confirmed")))
            .filter(confirmed__gt=0).order_by("-waiting", "-confirmed", "code").first())
        if expert is None or get_user_model().objects.filter(username=username).exists():
            return None
        experts.do_open_account(expert, username)
    expert.user.set_password(password)
    expert.user.save()
    if not expert.conflicts.exists():  # a firm they declared a tie to: never proposed for its needs
        from qifu.registry.models import Entity

        tied = (Entity.objects.filter(entity_type="enterprise", status="active", tech_needs__isnull=False)
                .exclude(tech_needs__pairings__expert=expert).order_by("uscc").first())
        if tied is not None:
            experts.do_declare_conflict(expert, tied.uscc, "曾任该企业技术顾问", by=expert.user)
    if not expert.pairings.filter(volunteered_at__isnull=False).exists():  # an open need they offered to take
        found = experts.open_needs(expert, 1)
        if found:
            experts.do_volunteer(found[0][0], expert, "做过同类问题，可先到现场看产线和样件")
    return expert


def list_late_filers(user, year: int | None, seed: int = 17) -> None:
    """The abnormal-operation list of a closed season: those who had not filed ``year``'s report
    by 30 June listed a fortnight later; of those who filed late since, some applied to come
    off (one of them refused) and most were removed, the rest not yet applied; two objected that
    they had filed, one of them annulled; of those no text or email reached, half had the written
    decision served on paper."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.abnormal import actions as abnormal
    from qifu.abnormal import queries as abnormal_queries
    from qifu.abnormal.models import Listing

    if not year or timezone.localdate() <= season.deadline(year) or Listing.objects.filter(report_year=year).exists():
        return
    decided = dt.datetime.combine(season.deadline(year) + dt.timedelta(days=15), dt.time(9, 30),
                                  tzinfo=timezone.get_current_timezone())
    n = abnormal.do_list(year, by=user, now=decided)
    rng = random.Random(seed)
    late = list(abnormal_queries.with_back_filed(Listing.objects.filter(report_year=year)).filter(back_filed=True)
                .select_related("entity").order_by("number"))
    for i, x in enumerate(late):
        applied = decided + dt.timedelta(days=rng.randint(3, 60), hours=rng.randint(0, 8))
        if i % 4 == 3 or applied > timezone.now():
            continue  # filed late, not applied yet: staff can call them (信用修复)
        x = abnormal.do_apply(x, by=user if i % 3 == 0 else None, now=applied)
        if i == 1:
            x = abnormal.do_refuse(x, user, "补报年报的从业人数与社保参保人数不符，请更正后再申请", now=applied + dt.timedelta(days=2))
            continue
        if i % 4 == 2:
            continue  # applied, waiting for the bureau's decision
        abnormal.do_remove(x, user, now=min(applied + dt.timedelta(days=rng.randint(1, 6)), timezone.now()))
    # two that had not filed object that they had (异议, an enterprise request each): one was
    # found to have filed on paper at its station, annulled; the other waits for an answer
    unfiled = list(abnormal_queries.with_back_filed(Listing.objects.filter(report_year=year, kind=Listing.Kind.LIST))
                   .filter(back_filed=False).select_related("entity").order_by("-number")[:2])
    for i, x in enumerate(unfiled):
        objected = max(decided + dt.timedelta(days=3 + i), timezone.now() - dt.timedelta(days=3 - i))  # lately
        abnormal.do_object(x, "本企业已于6月下旬到市场监管所报送纸质年报，不应列入", now=objected)
        if i == 0:
            abnormal.do_annul(x, user, "核实：企业于6月26日在市场监管所报送纸质年报，录入遗漏",
                              now=min(objected + dt.timedelta(days=2), timezone.now()))
    # of those no text or email reached, half had the written decision served on paper since
    # (by hand at the station, or by post); the rest wait on the list to serve
    unreached = list(abnormal_queries.unreached(Listing.objects.filter(report_year=year)).order_by("number"))
    for i, x in enumerate(unreached[: (len(unreached) + 1) // 2]):
        way, note = (("hand", "法定代表人到市场监管所签收") if i % 2 == 0 else
                     ("post", f"EMS {rng.randint(10 ** 12, 10 ** 13 - 1)}，已妥投"))
        abnormal.do_serve(x, way, min(decided.date() + dt.timedelta(days=rng.randint(3, 20)), timezone.localdate()), note,
                          by=user)
    print(f"经营异常名录：{year} 年度逾期未报 {n} 户列入，其中已补报 {len(late)} 户", flush=True)


def draw_inspections(user, seed: str = "demo-inspection") -> None:
    """The closed year's spot checks: a random one (3%) drawn three weeks ago, most of its
    entities checked since (nothing found, a few ordered to correct, one address found empty and
    one report found false, both listed), and a targeted one (those with serious findings of the quality rules) drawn today,
    a written check whose firms are told, the first two of which have sent their payroll
    and the next two asked for more time (one given a week, one waiting for an answer).
    Of the orders to correct whose ten days have passed, the first was followed up as corrected
    and the second listed as not corrected; the first still within its days was said corrected
    by the firm; the rest wait for their follow-up. Skipped when a check exists already."""
    import datetime as dt
    import random

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from qifu.abnormal import actions as abnormal
    from qifu.inspections import actions
    from qifu.inspections.models import Inspection

    if Inspection.objects.exists():
        return
    from django.contrib.auth import get_user_model

    from qifu.accounts.actions import assign_role

    # two of the bureau's inspectors beside the demo's administrator, so that each entity gets
    # two drawn from three; nobody signs in as them (no usable password)
    for username, first, last in (("demo-inspector-1", "周敏", ""), ("demo-inspector-2", "陈立", "")):
        if not get_user_model().objects.filter(username=username).exists():
            account, _ = assign_role(username, "admin")
            account.first_name, account.last_name = first, last
            account.set_unusable_password()
            account.save()
    year, now = abnormal.closed_year(), timezone.now()
    today = timezone.localdate(now)
    try:
        x = actions.do_draw(year, "random", f"{year}年度年报双随机抽查", "3", by=user, seed=seed,
                            now=now - dt.timedelta(days=21), finish_by=today + dt.timedelta(days=40))
        targeted = actions.do_draw(year, "targeted", f"{year}年度年报严重校验问题定向抽查", "10", by=user,
                                   criteria="open_findings > 0 AND entity_type = 'enterprise'", seed=seed + "-t", now=now,
                                   documents_by=today + dt.timedelta(days=actions.DOCUMENTS_DAYS))
    except actions.InspectionError as e:
        print(f"年报抽查：{e}", flush=True)
        return
    rng = random.Random(seed)
    wrong = ["年报从业人数与社保参保人数不符，已责令更正", "年报营业总收入与纳税申报收入不符，已责令更正",
             "年报未填写对外投资情况，已责令补充公示"]
    results = {"ok": 0, "corrected": 0, "unreachable": 0, "false_info": 0}
    followed = {True: 0, False: 0}  # orders to correct followed up: corrected, listed
    # those whose result is set: two ordered to correct long enough ago that their ten days have
    # passed, one a few days ago, an address found empty and a report found false (days ago)
    fixed = {1: ("corrected", wrong[0], 15), 2: ("corrected", wrong[1], 14), 3: ("unreachable", "实地核查，登记住所为空置厂房，无人经营", 9),
             4: ("corrected", wrong[2], 3), 5: ("false_info", "年报从业人数28人，社保参保记录为4人，企业无法提供用工记录", 8)}
    ordered = []
    for i, s in enumerate(x.samples.order_by("entity_id").prefetch_related("inspectors")):
        if i not in fixed and rng.random() < 0.25:
            continue  # still to be checked
        by = s.inspectors.first() or user
        day = today - dt.timedelta(days=rng.randint(1, 20))
        if i in fixed:
            result, found, ago = fixed[i]
            day = today - dt.timedelta(days=ago)
        elif rng.random() < 0.15:
            result, found = "corrected", rng.choice(wrong)
        else:
            result, found = "ok", ""
        try:
            s = actions.do_record(s, result, found, day, by, now=now)
        except actions.InspectionError:
            continue
        results[result] += 1
        if result == "corrected":
            ordered.append((s, by))
    past = [(s, by) for s, by in ordered if s.correct_by < today]
    for (s, by), corrected, note in zip(past, (True, False), ("已核对公示系统，年报已按要求更正", "已核对公示系统，年报仍未更正")):
        actions.do_follow_up(s, corrected, note, by, now=now)
        followed[corrected] += 1
    for s, _ in [(s, by) for s, by in ordered if s.correct_by >= today][:1]:
        actions.do_state_correction(s, "已在国家企业信用信息公示系统更正年报，请复查", now=now)
    # the written check: its firms are told by the worker; the first two have sent their payroll already
    sent = 0
    for s in targeted.samples.select_related("entity").order_by("entity_id")[:2]:
        payroll = SimpleUploadedFile(f"{year}年12月工资表.pdf", demo_pdf([
            f"Payroll, December {year} (synthetic demo document)", f"Entity: {s.entity_id}",
            f"Employees paid: {rng.randint(5, 60)}"]))
        actions.do_send_evidence(s, [payroll], f"{year}年12月工资表", now=now)
        sent += 1
    # its firms told now (as the worker would), so that what follows comes after the notice: the
    # next two asked for more time; the first was given a week by its inspector, the second waits
    # for an answer
    actions.tell_drawn(now)
    asked = list(targeted.samples.prefetch_related("inspectors").order_by("entity_id")[2:4])
    week = targeted.documents_by + dt.timedelta(days=7)
    whys = ("会计休产假，工资表和社保缴费记录下周才能整理好", "财务报表在税务代理处，月底才能取回")
    for s, why in zip(asked, whys):
        actions.do_ask_more_time(s, week, why, now=now)
    if asked:
        actions.do_extend_sample_documents(asked[0], week, f"企业申请：{whys[0]}", by=asked[0].inspectors.first() or user,
                                           now=now)
    print(f"年报抽查：{x.number} 抽取 {x.samples.count()} 户，已检查 {sum(results.values())} 户"
          f"（未发现问题 {results['ok']}，责令改正 {results['corrected']}，无法联系 {results['unreachable']}，"
          f"信息不实 {results['false_info']}；复查已改正 {followed[True]}，逾期未改正列入 {followed[False]}）；"
          f"{targeted.number} 定向抽取 {targeted.samples.count()} 户（书面检查，{sent} 户已上传材料，"
          f"{len(asked)} 户申请延长材料提交期限）", flush=True)


def demo_pdf(lines: list[str]) -> bytes:
    """A one-page PDF of ``lines`` (ASCII, Helvetica), one that opens: a document a demo firm
    sends, a lab's report, a project's paper."""
    text = "".join(f"({line.replace(chr(92), '').replace('(', '[').replace(')', ']')}) '" for line in lines)
    content = f"BT /F1 12 Tf 72 770 Td 18 TL {text} ET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
               "/Contents 5 0 R >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               f"<< /Length {len(content)} >>\nstream\n{content}\nendstream"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode("ascii")
    return out + f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")


def find_unreachable(user, seed: int = 19) -> None:
    """Three visits to registered addresses over the past fortnight, after texts and calls had
    reached nobody: two found nobody there (登记住所查无此主体), one of them listed since (its decision
    waiting to be served, by public notice), the other waiting for the decision; the third still
    to be made. Skipped when any visit has found an address empty already."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.abnormal import actions as abnormal
    from qifu.registry.models import Entity
    from qifu.reminders.actions import NOT_AT_ADDRESS, SHANGHAI, close_tasks
    from qifu.reminders.models import ContactTask, OutboxMessage

    if ContactTask.objects.filter(outcome__startswith=NOT_AT_ADDRESS).exists():
        return
    rng = random.Random(seed)
    firms = list(Entity.objects.filter(status="active", entity_type="enterprise").exclude(address="")
                 .exclude(address__isnull=True).order_by("uscc")[:500])
    if len(firms) < 3:
        return
    today = timezone.localdate()
    found = ["厂房大门紧锁、空置，邻居称企业已搬离半年", "登记地址为民宅，住户称不认识该企业"]
    for i, e in enumerate(rng.sample(firms, k=3)):
        day = today - dt.timedelta(days=(12, 4, 0)[i])
        m = OutboxMessage.objects.create(
            key=f"demo-visit:{e.uscc}:{day.isoformat()}", entity=e, purpose="filing", channel="visit",
            recipient=e.address, body="", reason="短信、电话均未联系上，上门核查登记住所", planned_for=day,
            next_attempt_at=timezone.now(), status=OutboxMessage.Status.TASK)
        task = ContactTask.objects.create(message=m, entity=e, channel="visit", due_on=day)
        if i < 2:
            close_tasks([task], NOT_AT_ADDRESS, found[i], now=dt.datetime.combine(day, dt.time(15, 0), tzinfo=SHANGHAI))
        if i == 0:
            abnormal.do_list_unreachable(e, day, f"上门核查：{found[i]}", by=user,
                                         now=dt.datetime.combine(day + dt.timedelta(days=3), dt.time(10, 0),
                                                                 tzinfo=SHANGHAI))
    print("登记住所核查：2 户查无此主体（1 户已列入经营异常名录，1 户待决定），1 户待上门", flush=True)


def accept_projects(user, seed: int = 17) -> None:
    """The imported projects (projects.csv) advanced over the past ten months, each at its own
    stage: some first phases long in use, one phase rectifying after a failed fire inspection,
    one report promised under 承诺容缺, some filed. Skipped when any project has moved already."""
    import datetime as dt
    import random

    from django.utils import timezone

    from qifu.engine.requests import workdays
    from qifu.projects import actions as projects
    from qifu.projects.models import Phase, Project

    if not Project.objects.exists() or Phase.objects.exclude(state="planned").exists():
        return
    rng = random.Random(seed)
    pdf = ("材料.pdf", "application/pdf", demo_pdf(["Acceptance document (synthetic demo document)"]))
    now = timezone.now()
    for k, p in enumerate(Project.objects.order_by("code")):
        start = now - dt.timedelta(days=rng.randint(120, 300))
        Project.objects.filter(pk=p.pk).update(registered_at=start)
        p.steps.update(at=start)
        at = start + dt.timedelta(days=rng.randint(20, 60))
        for phase in p.phases.order_by("seq"):
            if at > now - dt.timedelta(days=10):
                break
            docs = list(phase.items.filter(kind="document").order_by("id"))
            promise = k == 0 and phase.seq == 1  # one report late: let pass against a promise (承诺容缺)
            for item in docs[:-1] if promise else docs:
                projects.do_item(item, "submitted", document=pdf, by=user, now=at)
            if promise:
                projects.do_item(docs[-1], "promised", due=timezone.localdate(at) + dt.timedelta(days=45),
                                 note="企业书面承诺：检测报告出具后补交", by=user, now=at)
            projects.do_move(phase, "ready", by=user, now=at)
            projects.do_move(phase, "notify", inspection_on=timezone.localtime(workdays.due(at, 4)).date(), by=user, now=at)
            at = at + dt.timedelta(days=rng.randint(7, 20))
            fail = rng.random() < 0.15
            for item in phase.items.filter(kind="inspection"):
                bad = fail and item.code == "fire"
                projects.do_item(item, "failed" if bad else "passed", by=user, now=at,
                                 note="1. 疏散通道宽度不足\n2. 应急照明灯不亮\n3. 灭火器过期未更换" if bad else "")
            if fail:
                projects.do_move(phase, "rectify", by=user, now=at)
                fixed = phase.defects.order_by("id").first()  # the owner has fixed one so far
                if fixed is not None and at + dt.timedelta(days=3) < now:
                    projects.do_fix(fixed, ("整改后照片.pdf", "application/pdf", pdf[2]), "已清理通道堆放物",
                                    now=at + dt.timedelta(days=3))
                break
            projects.do_move(phase, "accept", by=user, now=at)
            at = at + dt.timedelta(days=rng.randint(3, 15))
            if at < now:
                projects.do_move(phase, "use", by=user, now=at)
            at = at + dt.timedelta(days=rng.randint(30, 90))
        p.refresh_from_db()
        if p.status == "accepted" and rng.random() < 0.7:
            try:
                projects.do_file(p, f"BA{timezone.localtime(now):%Y}-{k + 1:03d}", by=user, now=now)
            except projects.ProjectActionError:
                pass  # a promised document still out: the filing waits for it
    print(f"分期验收：建设项目 {Project.objects.count()} 个，已备案 {Project.objects.filter(status='filed').count()} 个",
          flush=True)


def backups_on() -> Path:
    """Nightly backups on, into the data directory unless set otherwise, as a deployment sets
    them up: the server, the worker and the filling process read ``QIFU_BACKUP_DIR`` (the
    dashboard shows the backups). Set before any of them starts."""
    os.environ.setdefault("QIFU_BACKUP_DIR", str(config.data_dir() / "backups"))
    return Path(os.environ["QIFU_BACKUP_DIR"])


def first_backup() -> Path | None:
    """The first backup, made now, unless the demo has one already."""
    from qifu import backup

    folder = backups_on()
    if any(folder.glob(backup.PATTERN)):
        return None
    try:
        return backup.make(folder).path
    except backup.BackupError as e:
        print(f"备份未做：{e}", flush=True)
        return None


def start_worker():
    """`qifu worker` beside the demo's server, as a deployment runs it: texts to files under the
    data directory (the demo's development backend), emails to the configured SMTP server."""
    import sys

    env = dict(os.environ, QIFU_DEMO="1")
    env.setdefault("QIFU_SMS_BACKEND", "file")
    return subprocess.Popen([sys.executable, "-m", "qifu", "worker"], env=env)
