"""Staff pages for policy funding (惠企政策直达): the measures (paid by policy, township and
industry; days from eligibility to payment; eligible firms not yet confirmed) as charts and
XLSX; a policy's matches with the review of holds and applications and the release of
milestones; payment batches for the treasury and its receipts. Views only: changes go through
``policies.actions``; who sees what through ``accounts.scope``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.accounts import scope
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import AuditEvent, StaffProfile
from qifu.engine import reference
from qifu.engine.policies import match as engine
from qifu.engine.policies import profile
from qifu.engine.policies.policy import PolicyError
from qifu.policies import actions, queries
from qifu.policies.models import Application, ApplicationFile, Match, MatchRun, Payment, PaymentBatch, Policy
from qifu.registry.models import Entity, Township
from qifu.service_requests import attachments
from qifu.web import downloads
from qifu.web.downloads import audited_list, audited_xlsx

Role = StaffProfile.Role


def _matches(request):
    return scope.filter_policy_matches(Match.objects.all(), request.user)


def _payments(request):
    return Payment.objects.filter(match__in=_matches(request))


def _measures(request) -> dict:
    matches, payments = _matches(request), _payments(request)
    rows = queries.overview(matches)
    sections = reference.industries()
    by_section = {}
    for label, v in queries.paid_by(payments, "match__entity__industry_code"):
        key = label[:1] if label != "—" else "—"
        by_section[key] = by_section.get(key, 0) + v
    by_section = sorted(by_section.items(), key=lambda kv: -kv[1])
    days = queries.days_to_payment(payments)
    waiting = [(r["policy"].title, r["waiting"]) for r in rows if r["waiting"]]
    by_town = queries.paid_by(payments, "match__town__name")
    return {
        "rows": rows, "days": days, "by_section": [(sections.get(k, k), v) for k, v in by_section],
        "by_town": by_town,
        "tiles": {
            "policies": len(rows), "firms": sum(r["firms"] for r in rows),
            "waiting": sum(r["waiting"] for r in rows), "held": sum(r["held"] for r in rows),
            "matched": round(sum(float(r["matched"]) for r in rows), 2),
            "paid": round(sum(float(r["paid"]) for r in rows), 2),
        },
        "charts": {
            "paid-policies": {"labels": [r["policy"].title for r in rows], "horizontal": True, "series": [
                {"label": "应享（万元）", "values": [round(float(r["matched"]), 2) for r in rows]},
                {"label": "已到账（万元）", "values": [round(float(r["paid"]), 2) for r in rows]}]},
            "paid-towns": {"labels": [t for t, _ in by_town], "values": [round(v, 2) for _, v in by_town],
                           "horizontal": True, "label": "已到账（万元）"},
            "paid-sections": {"type": "doughnut", "labels": [sections.get(k, k) for k, _ in by_section],
                              "values": [round(v, 2) for _, v in by_section]},
            "days": {"labels": [b for b, _ in days["bands"]], "values": [n for _, n in days["bands"]], "label": "企业数"},
            "waiting": {"labels": [t for t, _ in waiting], "values": [n for _, n in waiting], "horizontal": True,
                        "label": "待确认或待审核（户）"},
        },
    }


@staff_required
def overview(request):
    ctx = _measures(request)
    if request.GET.get("format") == "xlsx":
        return _overview_xlsx(request, ctx)
    ctx.update(can_manage=scope.role_of(request.user) == Role.ADMIN,
               batches=PaymentBatch.objects.all()[:20] if scope.role_of(request.user) == Role.ADMIN else [],
               to_review=Application.objects.filter(match__in=_matches(request),
                                                    status=Application.Status.SUBMITTED).count())
    return render(request, "web/policies_overview.html", ctx)


def _overview_xlsx(request, ctx) -> HttpResponse:
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("政策兑现")
    spreadsheets.append(ws, ["政策编号", "政策名称", "数据年度", "方式", "预算（万元）", "符合企业", "待确认或待审核", "待复核",
                             "不再符合", "企业放弃", "已兑现企业", "应享（万元）", "已核准（万元）", "已到账（万元）"])
    for r in ctx["rows"]:
        p = r["policy"]
        spreadsheets.append(ws, [p.code, p.title, p.year, p.get_mode_display(), float(p.budget) if p.budget is not None else None,
                                 r["firms"], r["waiting"], r["held"], r["lapsed"], r["declined"], r["paid_firms"], float(r["matched"]),
                                 float(r["released"]), float(r["paid"])])
    ws = wb.create_sheet("按镇街")
    spreadsheets.append(ws, ["镇街", "已到账（万元）"])
    for t, v in ctx["by_town"]:
        spreadsheets.append(ws, [t, v])
    ws = wb.create_sheet("按行业门类")
    spreadsheets.append(ws, ["行业门类", "已到账（万元）"])
    for t, v in ctx["by_section"]:
        spreadsheets.append(ws, [t, v])
    return audited_xlsx(request, wb, "policies", f"惠企政策兑现统计 {len(ctx['rows'])} 项政策")


UNTOLD = "untold"
IGNORED = "ignored"  # reminded again and still not confirmed: to call


MATCH_HEADER = ["统一社会信用代码", "名称", "镇街", "金额（万元）", "符合理由", "状态", "符合条件日期", "复核原因", "通知时间",
                "再次提醒时间"]


def _export_matches(request, p: Policy, qs, fmt: str) -> HttpResponse:
    """A policy's match list as a workbook or, for a long one (the stable-employment subsidy
    matches 60,000 firms in a county), CSV: read as plain rows, not model instances."""
    statuses = dict(Match.Status.choices)
    local = downloads.local_time
    rows = ([uscc, name, town, float(amount), reason, statuses.get(status, status), eligible_on, hold, local(told),
             local(again)]
            for uscc, name, town, amount, reason, status, eligible_on, hold, told, again in qs.values_list(
                "entity_id", "entity__name", "entity__town__name", "amount", "reason", "status", "eligible_on",
                "hold_reason", "told_at", "followed_up_at").iterator(chunk_size=2000))
    return audited_list(request, fmt, "政策匹配", MATCH_HEADER, rows, f"policy-{p.code}",
                        lambda n, kind: f"政策 {p.code} 匹配名单 {n} 行{kind}")


@staff_required
def policy(request, code: str):
    p = get_object_or_404(Policy, code=code)
    qs = _matches(request).filter(policy=p).select_related("entity", "entity__town").order_by("status", "entity_id")
    status = request.GET.get("status", "")
    if status == UNTOLD:  # eligible and not told (no reachable number or address): to call
        qs = qs.filter(status=Match.Status.ELIGIBLE, told_at__isnull=True)
    elif status == IGNORED:  # told, reminded once, and still not confirmed: to call too
        qs = qs.filter(status=Match.Status.ELIGIBLE, followed_up_at__isnull=False)
    elif status:
        qs = qs.filter(status=status)
    fmt = request.GET.get("format")
    if fmt in ("xlsx", "csv"):
        return _export_matches(request, p, qs, fmt)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    counts = dict(_matches(request).filter(policy=p).values_list("status").annotate(n=Count("id")))
    waiting = _matches(request).filter(policy=p, status=Match.Status.ELIGIBLE).aggregate(
        untold=Count("id", filter=Q(told_at__isnull=True)), ignored=Count("id", filter=Q(followed_up_at__isnull=False)))
    ledger = Payment.objects.filter(policy=p, match__in=_matches(request)).aggregate(
        released=Sum("amount"), paid=Sum("amount", filter=Q(status=Payment.Status.PAID)))
    return render(request, "web/policy.html", {
        "p": p, "page": page, "status": status, "long_list": page.paginator.count > downloads.LONG_LIST,
        "statuses": [(v, label, counts.get(v, 0)) for v, label in Match.Status.choices],
        "untold": waiting["untold"], "UNTOLD": UNTOLD, "ignored": waiting["ignored"], "IGNORED": IGNORED,
        "ledger": ledger, "can_review": scope.can_review_policy(request.user, p),
        "can_write_policy": scope.role_of(request.user) == Role.ADMIN,
        "versions": p.versions.order_by("-created_at"),
        # the last 保存并匹配 while it is not done, or when it failed: the list below is not yet its
        "run": p.runs.exclude(status=MatchRun.Status.DONE).filter(
            pk=p.runs.order_by("-created_at", "-pk").values("pk")[:1]).first(),
    })


APPLICATION_HEADER = ["提交时间", "等待天数", "政策编号", "政策", "统一社会信用代码", "企业", "镇街", "申报项目", "项目编号",
                      "附件数", "状态", "审核时间", "审核意见"]


@staff_required
def applications(request):
    """The applications under 需申请 policies, to review: those still 待审核 by default, oldest
    first with the days they have waited, across every policy the user sees (a department its
    own policies'). Each opens on its match's page, where it is reviewed; XLSX or CSV (audited)."""
    status = request.GET.get("status", Application.Status.SUBMITTED)
    qs = (Application.objects.filter(match__in=_matches(request))
          .select_related("match__policy", "match__entity", "match__town")
          .annotate(n_files=Count("files")).order_by("submitted_at", "id"))
    if status in Application.Status.values:
        qs = qs.filter(status=status)
    else:
        status = ""
    now = timezone.now()
    fmt = request.GET.get("format")
    if fmt in ("xlsx", "csv"):
        labels, local = dict(Application.Status.choices), downloads.local_time
        rows = ([local(a.submitted_at), (now - a.submitted_at).days, a.match.policy.code, a.match.policy.title,
                 a.match.entity_id, a.match.entity.name, a.match.town.name if a.match.town else "", a.project,
                 a.project_code, a.n_files, labels.get(a.status, a.status), local(a.reviewed_at), a.review_reason]
                for a in qs.iterator(chunk_size=500))
        return audited_list(request, fmt, "政策申请", APPLICATION_HEADER, rows, "policy-applications",
                            lambda n, kind: f"政策申请名单 {n} 行{kind}")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    for a in page:
        a.waited = (now - a.submitted_at).days
        a.reviewable = scope.can_review_policy(request.user, a.match.policy)
    counts = dict(Application.objects.filter(match__in=_matches(request)).values_list("status").annotate(n=Count("id")))
    return render(request, "web/policy_applications.html", {
        "page": page, "status": status,
        "statuses": [(v, label, counts.get(v, 0)) for v, label in Application.Status.choices],
    })


def _match(request, match_id: int) -> Match:
    m = _matches(request).filter(pk=match_id).select_related("policy", "entity", "entity__town").first()
    if m is None:
        raise Http404("没有这条匹配，或不属于您的范围")
    return m


@staff_required
def match(request, match_id: int):
    m = _match(request, match_id)
    reveal = request.GET.get("reveal") == "account" and scope.role_of(request.user) == Role.ADMIN and m.bank_account
    if reveal:
        scope.audit(request, AuditEvent.Action.VIEW_ACCOUNT, uscc=m.entity_id, detail=f"政策 {m.policy.code} 收款账号")
    certificates = list(m.certificates.order_by("issued_on", "certificate_no"))
    people = request.GET.get("reveal") == "people" and scope.can_see_contacts(request.user) and certificates
    if people:
        scope.audit(request, AuditEvent.Action.VIEW_PERSON, uscc=m.entity_id,
                    detail=f"政策 {m.policy.code} 证书持有人 {len(certificates)} 人")
    return render(request, "web/policy_match.html", {
        "m": m, "payments": m.payments.select_related("batch").order_by("seq"),
        "application": Application.objects.filter(match=m).prefetch_related("files").first(),
        "can_review": scope.can_review_policy(request.user, m.policy), "revealed": reveal,
        "can_reveal": scope.role_of(request.user) == Role.ADMIN, "certificates": certificates,
        "people": people, "can_see_people": scope.can_see_contacts(request.user),
        "next_seq": m.payments.count() + 1 if m.payments.count() < len(m.policy.installments or ["1"]) else None,
    })


@staff_required(write=True)
@require_POST
def match_act(request, match_id: int):
    m = _match(request, match_id)
    if not scope.can_review_policy(request.user, m.policy):
        raise PermissionDenied("只有局管理员或政策主管部门可以办理")
    action, note = request.POST.get("action"), request.POST.get("note", "")
    try:
        if action == "release_hold":
            actions.do_release_hold(m, request.user, note)
            messages.success(request, "已复核，恢复拨付")
        elif action == "milestone":
            p = actions.do_reach_milestone(m, int(request.POST.get("seq", "0")), request.user)
            messages.success(request, f"已核准第 {p.seq} 期 {p.amount.normalize():f} 万元" if p else "这一期已经核准过")
        elif action in ("approve", "reject"):
            app = Application.objects.filter(match=m).first()
            if app is None:
                raise actions.PolicyActionError("这家企业还没有提交申请")
            actions.do_review(app, action == "approve", note, request.user)
            messages.success(request, "审核意见已保存")
        elif action == "return":
            app = Application.objects.filter(match=m).first()
            if app is None:
                raise actions.PolicyActionError("这家企业还没有提交申请")
            actions.do_return(app, note, request.user)
            messages.success(request, "已退回补正，并告知企业需要补充的内容")
        elif action == "decline":
            given_up = m.status in actions.GIVE_UP
            actions.do_decline(m, note, by=request.user)
            messages.success(request, "已登记企业放弃其余资金，已核准未拨付的已取消" if given_up
                             else "已登记企业放弃，不会再为这项政策联系企业")
        else:
            messages.error(request, "请选择要办理的事项")
    except (actions.PolicyActionError, ValueError) as e:
        messages.error(request, str(e))
    return redirect("policy-match", match_id=m.pk)


# a new policy's text to begin from: the contract's example (§1.10), with the keys staff use
NEW_POLICY = """id: CX-{year}-01
title: 政策名称
year: {data_year}                      # 按哪一年度的数据判断
mode: automatic                 # automatic 免申即享 · application 需申请
department: 主管部门
category: 研发创新
summary: 用企业看得懂的话说明这项政策
basis: 文件依据（文号）
eligible: "above_threshold AND rd_spend >= 100 AND land_class IN ('A', 'B')"
amount: "LEAST(rd_spend * 0.05, 50)"   # 万元
budget: 500                     # 万元，可不设
installments: [1]
"""


TRIAL_HEADER = ["统一社会信用代码", "名称", "镇街", "金额（万元）", "符合理由", "与现有匹配相比"]


def _export_trial(request, t: actions.Trial) -> HttpResponse:
    """试算's every firm as a workbook (audited), for the departments to go through before it
    is saved."""
    wanted = set(t.rows["uscc"].to_list())  # read whole: a county's largest policy names 60,000 firms
    names = {u: n for u, n in Entity.objects.values_list("uscc", "name").iterator(chunk_size=5000) if u in wanted}
    towns = dict(Township.objects.values_list("code", "name"))
    rows = ([u, names.get(u, ""), towns.get(town, ""), float(engine.decimal(m)), reason, change]
            for u, m, reason, town, change in t.rows.sort("uscc").iter_rows())
    return audited_list(request, "xlsx", "试算名单", TRIAL_HEADER, rows, f"policy-trial-{t.policy.id}",
                        lambda n, kind: f"政策 {t.policy.id} 试算名单 {n} 行{kind}（未保存）")


@staff_required(write=True)
def policy_write(request, code: str | None = None):
    """A policy written in the browser (administrators): its YAML, 试算 (what it would match on
    today's data, nothing stored) and 保存并匹配 (a new version, matched and told at once)."""
    if scope.role_of(request.user) != Role.ADMIN:
        raise PermissionDenied("只有局管理员可以新增或修改政策")
    p = get_object_or_404(Policy, code=code) if code else None
    today = timezone.localdate()
    text = p.text if p else NEW_POLICY.format(year=today.year, data_year=today.year - 1)
    ctx = {"p": p, "notify": True, "versions": p.versions.order_by("-created_at")[:10] if p else [],
           "fields": [(name, spec[1]) for name, spec in profile.COLUMNS.items()]}
    if request.method == "POST":
        text = request.POST.get("text", "").replace("\r\n", "\n")
        ctx["notify"] = request.POST.get("notify") == "on"
        try:
            if request.POST.get("action") == "save":
                run = actions.do_write_policy(text, code, request.user, notify=ctx["notify"])
                return redirect("policy-run", run_id=run.pk)
            t = actions.trial(text, code)
            if request.POST.get("action") == "export":
                return _export_trial(request, t)
            ctx["trial"] = t
            ctx["charts"] = {"trial-towns": {"labels": [n for n, _, _ in t.by_town],
                                             "values": [float(m) for _, _, m in t.by_town], "horizontal": True,
                                             "label": "金额（万元）"}}
        except (PolicyError, actions.PolicyActionError) as e:
            ctx["error"] = str(e)
    ctx["text"] = text
    return render(request, "web/policy_write.html", ctx)


WORKER_LATE = 60  # seconds queued after which the page says the worker seems not to be running


@staff_required(write=True)
def policy_run(request, run_id: int):
    """保存并匹配 followed (administrators): the phase `qifu worker` has reached, the page
    refreshing itself; once done, the policy's page with what was found."""
    if scope.role_of(request.user) != Role.ADMIN:
        raise PermissionDenied("只有局管理员可以新增或修改政策")
    run = get_object_or_404(MatchRun.objects.select_related("policy"), pk=run_id)
    if run.status == MatchRun.Status.DONE:
        messages.success(request, f"已保存并匹配：{run.summary}")
        for w in run.warnings:
            messages.warning(request, w)
        return redirect("policy", code=run.policy.code)
    waited = (timezone.now() - run.created_at).total_seconds()
    # 排队, then match_policies' phases: those passed, the one under way (or where it stopped), those to come
    at = 1 + actions.PHASES.index(run.phase) if run.phase in actions.PHASES else int(run.status != MatchRun.Status.QUEUED)
    now_state = "failed" if run.status == MatchRun.Status.FAILED else "current"
    steps = [(name, "done" if i < at else now_state if i == at else "") for i, name in enumerate(("排队", *actions.PHASES))]
    return render(request, "web/policy_run.html", {
        "run": run, "steps": steps, "waited": int(waited),
        "late": run.status == MatchRun.Status.QUEUED and waited > WORKER_LATE})


@staff_required
def attachment(request, file_id: int):
    f = get_object_or_404(ApplicationFile, pk=file_id)
    _match(request, f.application.match_id)
    return FileResponse(attachments.open_file(f), content_type=f.content_type, as_attachment=True, filename=f.name)


def _admin(request) -> None:
    if scope.role_of(request.user) != Role.ADMIN:
        raise PermissionDenied("只有局管理员可以办理拨付")


@staff_required(write=True)
@require_POST
def batch_create(request):
    _admin(request)
    try:
        batch = actions.do_create_batch(request.user)
        messages.success(request, f"已生成拨付批次 {batch.number}：{batch.lines} 笔，{batch.total.normalize():f} 万元")
    except actions.PolicyActionError as e:
        messages.error(request, str(e))
    return redirect("policies")


@staff_required
def batch_file(request, number: str):
    _admin(request)
    batch = get_object_or_404(PaymentBatch, number=number)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{batch.number}.xlsx"
        actions.export_batch(batch, path)
        data = path.read_bytes()
    scope.audit(request, AuditEvent.Action.EXPORT, detail=f"拨付批次 {batch.number} {batch.lines} 笔")
    response = HttpResponse(data, content_type=spreadsheets.MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{batch.number}.xlsx"'
    return response


@staff_required(write=True)
@require_POST
def batch_receipt(request, number: str):
    _admin(request)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "请选择国库回执文件")
        return redirect("policies")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(upload.name).name
        path.write_bytes(upload.read())
        try:
            r = actions.do_reconcile(number, actions.read_receipt(path))
            messages.success(request, f"批次 {number} 已对账：到账 {r.paid} 笔，失败 {r.failed} 笔，无变化 {r.unchanged} 笔")
        except actions.PolicyActionError as e:
            messages.error(request, str(e))
    return redirect("policies")


@staff_required(write=True)
@require_POST
def payment_retry(request, payment_id: int):
    _admin(request)
    p = get_object_or_404(Payment, pk=payment_id)
    try:
        actions.do_retry(p, request.user)
        messages.success(request, "已退回待拨付，将编入下一批次")
    except actions.PolicyActionError as e:
        messages.error(request, str(e))
    return redirect("policy-match", match_id=p.match_id)
