"""Staff pages of the abnormal-operation list (经营异常名录): after a season has closed, who is
due to be listed and by whom (a chart by township), the decision that lists them, the listings
with their way off (applications to decide, entities that filed late but have not applied,
listings nearing three years) and the workbook. Views only: changes go through
``abnormal.actions``; who sees what through ``accounts.scope``."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.contrib import messages
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.abnormal import actions, documents, queries
from qifu.abnormal.models import ABOUT, Listing, Ruling, Service
from qifu.accounts import scope
from qifu.accounts.decorators import staff_required
from qifu.registry.models import Entity
from qifu.service_requests import attachments
from qifu.web import downloads, uploads, views
from qifu.web.downloads import audited_xlsx, local_time, person

SHOWN = 300  # listings on the page; the workbook has them all


def _listings(request):
    return scope.filter_by_town(Listing.objects.all(), request.user)


def _candidates(request, year: int):
    return scope.filter_by_town(actions.candidates(year), request.user)


def _can_act(request) -> bool:
    return views.can_act_on_listings(request.user)


# the sets of decisions on a finding, by ground: their words before a title (from the listing's
# own short name, ``models.ABOUT``), in a sentence, and in a file's name (a year's set is named
# by its year)
FINDINGS = {
    ground: {"label": f"因{ABOUT[ground]}列入、", "what": what, "slug": slug}
    for ground, what, slug in ((Listing.Ground.UNREACHABLE, "登记住所无法联系", "unreachable"),
                               (Listing.Ground.FALSE_INFO, "公示信息不实", "false-info"),
                               (Listing.Ground.UNCORRECTED, "逾期未按责令更正", "uncorrected"))
}
# the grounds a spot check finds (docs/inspections.md): a tile, a filter and their decisions each
CHECKED = (Listing.Ground.FALSE_INFO, Listing.Ground.UNCORRECTED)


def _which(x: Listing | None = None, year: int | None = None, ground: str = "") -> dict:
    """A set of decisions, a report year's or a finding's ground's: its query (``q``), its words
    before a title (``label``) and in a sentence (``what``), and its file name's part (``slug``)."""
    ground = x.ground if x is not None and x.on_finding else ground
    if ground in FINDINGS:
        return {"q": f"ground={ground}", **FINDINGS[ground], "ground": ground}
    year = x.report_year if x is not None else year
    return {"q": f"year={year}", "label": f"{year} 年度", "what": f"{year} 年度", "slug": str(year), "year": year,
            "ground": ""}


def _ground(request) -> str:
    """The finding's ground the query names (``ground=unreachable``), or empty."""
    ground = request.GET.get("ground", "")
    return ground if ground in FINDINGS else ""


def _year(request) -> int:
    latest = actions.closed_year()
    try:
        year = int(request.GET.get("year") or latest)
    except ValueError:
        return latest
    return year if 2000 <= year <= latest else latest


@staff_required
def overview(request):
    year = _year(request)
    listings = _listings(request)
    shown = queries.with_back_filed(listings.filter(report_year=year)).select_related("entity", "town", "objection")
    status = request.GET.get("status", "") or _ground(request)
    if status == "back_filed":
        shown = shown.filter(status=Listing.Status.LISTED, back_filed=True)
    elif status == "objected":  # every year: an objection waits for an answer whatever the year
        shown = queries.with_back_filed(listings.filter(queries.OBJECTED)).select_related("entity", "town", "objection")
    elif status in ("applied", "overdue"):  # the year's, and those on a finding (they have no year)
        shown = queries.with_back_filed(listings.filter(Q(report_year=year) | ~Q(ground=Listing.Ground.NOT_FILED)))
        shown = shown.select_related("entity", "town", "objection").filter(status=Listing.Status.APPLIED)
        if status == "overdue":
            shown = shown.filter(applied_at__lt=queries.overdue_before())
    elif status == "warn":
        shown = listings.filter(status__in=actions.STANDING, listed_on__lte=actions.warn_before(timezone.localdate()))
        shown = queries.with_back_filed(shown).select_related("entity", "town", "objection")
    elif status == "moved":  # every year: unreachable, and its address registered anew since
        shown = queries.with_back_filed(queries.moved(listings)).select_related("entity", "town", "objection")
    elif status in FINDINGS:  # every year: the ground has none
        shown = queries.with_back_filed(listings.filter(ground=status))
        shown = shown.select_related("entity", "town", "objection")
    elif status in Listing.Status.values:
        shown = shown.filter(status=status)
    if request.GET.get("format") == "xlsx":
        return _xlsx(request, year, shown)
    total = shown.count()
    # who is due, by township and type in one pass (it reads the registry and the year's reports)
    due_rows = list(_candidates(request, year).values_list("town__name", "entity_type").annotate(n=Count("uscc")))
    due, by_type = Counter(), Counter()
    for town, typ, n in due_rows:
        due[town] += n
        by_type[typ] += n
    listed_towns = dict(listings.filter(report_year=year).values_list("town__name").annotate(n=Count("id")))
    towns = sorted(set(due) | set(listed_towns), key=lambda t: (-due[t] - listed_towns.get(t, 0), t))
    m = queries.measures(listings)
    latest = actions.closed_year()
    unreachable_due = actions.unreachable_due(entities=scope.filter_by_town(Entity.objects.all(), request.user))
    return render(request, "web/abnormal.html", {
        "not_ready": actions.not_ready(year), "year": year, "years": list(range(latest, latest - 5, -1)),
        "decide_by": actions.decide_by(year), "list_workdays": actions.LIST_WITHIN_WORKDAYS, "today": timezone.localdate(),
        "m": m, "status": status, "year_m": queries.measures(listings.filter(report_year=year)),
        "unreached": queries.unreached(listings.filter(report_year=year)).count(),
        "unreachable_due": unreachable_due,
        "unreachable_unreached": queries.unreached(listings.filter(ground=Listing.Ground.UNREACHABLE)).count(),
        "checked": [{"ground": g, "label": Listing.Ground(g).label, "standing": m[g], **FINDINGS[g],
                     "unreached": queries.unreached(listings.filter(ground=g)).count()} for g in CHECKED],
        "refusals_unreached": len(queries.unreached_refusals(listings)),
        "candidates": sum(due.values()), "by_type": dict(by_type), "many_towns": len(towns) > 1,
        "listings": list(shown.prefetch_related("rulings").order_by("number")[:SHOWN]), "shown_total": total, "limit": SHOWN,
        "long_list": total > downloads.LONG_LIST, "query": f"year={year}&status={status}&format=xlsx",
        "can_act": _can_act(request), "town_name": views.town_name(scope.town_of(request.user)), "decide_workdays": actions.DECIDE_WITHIN_WORKDAYS,
        "charts": {
            "abnormal-towns": {"labels": towns, "horizontal": True, "stacked": True, "series": [
                {"label": "拟列入", "values": [due[t] for t in towns]},
                {"label": "已列入（含已移出）", "values": [listed_towns.get(t, 0) for t in towns]}]},
            "abnormal-years": m["chart"]},
    })


@staff_required(write=True)
@require_POST
def list_due(request):
    """The decision that lists the candidates of a closed season: the county's (the bureau's
    administrators) or a township's (its officer, only their own)."""
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以作出列入决定")
        return redirect("abnormal")
    try:
        year = int(request.POST.get("year", ""))
    except ValueError:
        messages.error(request, "请选择报告年度")
        return redirect("abnormal")
    if not request.POST.get("checked"):
        messages.error(request, "请先核对拟列入名单，勾选“已核对”后再作出列入决定")
        return redirect(f"{reverse('abnormal')}?year={year}")
    town = scope.town_of(request.user) if scope.role_of(request.user) == scope.Role.OFFICER else None
    if scope.role_of(request.user) == scope.Role.OFFICER and not town:
        messages.error(request, "您的账号没有所属镇街，不能作出列入决定")
        return redirect("abnormal")
    try:
        n = actions.do_list(year, by=request.user, town=town)
    except actions.ListingError as e:
        messages.error(request, str(e))
    else:
        views.forget_due()  # the dashboard's count of who is due
        messages.success(request, f"已作出列入决定 {n} 户，并已书面告知能联系到的主体" if n else "没有需要列入的主体")
    return redirect(f"{reverse('abnormal')}?year={year}")


def _posted_day(request, name: str) -> dt.date | None:
    """The day posted as ``name`` (YYYY-MM-DD), or None when missing or not a day."""
    try:
        return dt.date.fromisoformat(request.POST.get(name, ""))
    except ValueError:
        return None


def _back(request, default: str) -> str:
    back = request.POST.get("next", "")
    return back if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else default


def _finding(request) -> tuple[Entity, dt.date | None, str]:
    """A decision on a finding of an unreachable address, as posted: the entity (404 outside the
    reader's township), the finding's day (None, with the reason told, when it cannot be
    decided: a reader who may not decide, no day) and where to go back to."""
    e = get_object_or_404(scope.filter_by_town(Entity.objects.all(), request.user), uscc=request.POST.get("uscc", ""))
    back = _back(request, f"{reverse('abnormal')}?status=unreachable")
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以作出决定")
        return e, None, back
    found_on = _posted_day(request, "found_on")
    if found_on is None:
        messages.error(request, "请填写查实日期")
    return e, found_on, back


@staff_required(write=True)
@require_POST
def list_unreachable(request):
    """The decision that lists one entity a visit (or the post) found not at its registered
    address: the county's administrators, or the officer of its township."""
    e, found_on, back = _finding(request)
    if found_on is None:
        return redirect(back)
    try:
        x = actions.do_list_unreachable(e, found_on, request.POST.get("found", ""), by=request.user)
    except actions.ListingError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"已作出列入决定（{x.number}）；登记了手机或邮箱的，已书面告知；"
                                  f"未能告知的，请打印决定书送达（可公告送达）")
    return redirect(back)


@staff_required(write=True)
@require_POST
def set_aside(request):
    """A finding of an unreachable address checked and not to be listed (核实后不予列入): the
    county's administrators, or the officer of the entity's township."""
    e, found_on, back = _finding(request)
    if found_on is None:
        return redirect(back)
    try:
        actions.do_set_aside(e, found_on, request.POST.get("reason", ""), by=request.user)
    except actions.ListingError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"已核实，不予列入（{e.name}）")
    return redirect(back)


@staff_required(write=True)
@require_POST
def act(request, listing_id: int):
    x = get_object_or_404(_listings(request), pk=listing_id)
    back = _back(request, f"{reverse('abnormal')}?" + (f"status={x.ground}" if x.on_finding else f"year={x.report_year}"))
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以办理移出")
        return redirect(back)
    what = request.POST.get("action")
    try:
        if what == "apply":
            actions.do_apply(x, by=request.user, statement=request.POST.get("statement", ""))
            messages.success(request, f"已代企业登记移出申请（{x.number}）")
        elif what == "remove":
            actions.do_remove(x, request.user, request.POST.get("note", ""))
            messages.success(request, f"已移出（{x.number}）；登记了手机或邮箱的，已书面告知")
        elif what == "annul":
            actions.do_annul(x, request.user, request.POST.get("reason", ""))
            messages.success(request, f"已撤销（{x.number}）；登记了手机或邮箱的，已书面告知")
        elif what == "refuse":
            actions.do_refuse(x, request.user, request.POST.get("reason", ""))
            messages.success(request, f"已不予移出（{x.number}）；登记了手机或邮箱的，已书面告知原因")
        else:
            messages.error(request, "未知操作")
    except actions.ListingError as e:
        messages.error(request, str(e))
    return redirect(back)


PRINTED = 500  # decisions on one page to print; more are printed township by township


def _service(x: Listing, served) -> dict:
    """What the decision page needs to record ``served`` (a listing, or a refusal to remove) as
    served on paper and to keep its proof."""
    args = [x.pk] if served is x else [x.pk, served.pk]
    suffix = "" if served is x else "-ruling"
    return {"served": served, "ways": Service.choices, "today": timezone.localdate(),
            "serve_url": reverse(f"abnormal-serve{suffix}", args=args),
            "proof_url": reverse(f"abnormal-proof{suffix}", args=args),
            "proof_upload_url": reverse(f"abnormal-proof-upload{suffix}", args=args)}


@staff_required
def decision(request, listing_id: int):
    """One listing's written decision (决定书), to print, how it was served on paper, and the
    decisions made on it later (removal, refusal, annulment)."""
    x = get_object_or_404(_listings(request).select_related("entity", "served_by"), pk=listing_id)
    return render(request, "web/abnormal_decisions.html", {
        "decisions": [documents.decision(x)], **_which(x), "x": x, "can_act": _can_act(request),
        "rulings": x.rulings.all(), **_service(x, x)})


@staff_required
def ruling(request, listing_id: int, ruling_id: int):
    """A later decision on a listing (移出, 不予移出, 撤销), to print; a refusal, with how it was
    served on paper where no text or email reached the entity."""
    x = get_object_or_404(_listings(request).select_related("entity"), pk=listing_id)
    r = get_object_or_404(x.rulings.select_related("served_by"), pk=ruling_id)
    return render(request, "web/abnormal_decisions.html", {
        "decisions": [documents.ruling(r)], **_which(x), "listing": x, "rulings": x.rulings.all(),
        "can_act": _can_act(request), **(_service(x, r) if r.kind == Ruling.Kind.REFUSE else {})})


def _served_one(request, listing_id: int, ruling_id: int | None):
    """The decision to serve (a listing's, or a refusal on it) and its page."""
    x = get_object_or_404(_listings(request), pk=listing_id)
    if ruling_id is None:
        return x, reverse("abnormal-decision", args=[x.pk])
    r = get_object_or_404(x.rulings.filter(kind=Ruling.Kind.REFUSE), pk=ruling_id)
    return r, reverse("abnormal-ruling", args=[x.pk, r.pk])


@staff_required(write=True)
@require_POST
def serve(request, listing_id: int, ruling_id: int | None = None):
    """The decision served on paper: how, when, who signed (送达)."""
    x, back = _served_one(request, listing_id, ruling_id)
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以登记送达")
        return redirect(back)
    on = _posted_day(request, "served_on")
    if on is None:
        messages.error(request, "请填写送达日期")
        return redirect(back)
    try:
        proof = _proof(request)
        actions.do_serve(x, request.POST.get("way", ""), on, request.POST.get("note", ""), by=request.user, proof=proof)
        messages.success(request, f"已登记送达（{x.number}）" + ("，送达回证已保存" if proof else ""))
    except (actions.ListingError, attachments.AttachmentError) as e:
        messages.error(request, str(e))
    return redirect(back)


def _proof(request) -> tuple[str, str, bytes] | None:
    """The scanned proof of service uploaded with the form (an image or a PDF, by its content), or
    None; ``AttachmentError`` naming the file otherwise."""
    upload = request.FILES.get("proof")
    return attachments.checked([upload], what="每份送达回证")[0] if upload else None


@staff_required(write=True)
@require_POST
def proof_upload(request, listing_id: int, ruling_id: int | None = None):
    """The scanned proof of service added to a decision served on paper (it often comes back
    later than the service: the post's receipt)."""
    x, back = _served_one(request, listing_id, ruling_id)
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以上传送达回证")
        return redirect(back)
    try:
        proof = _proof(request)
        if proof is None:
            raise actions.ListingError("请选择送达回证的扫描件（图片或 PDF）")
        actions.do_attach_proof(x, proof)
        messages.success(request, f"送达回证已保存（{x.number}）")
    except (actions.ListingError, attachments.AttachmentError) as e:
        messages.error(request, str(e))
    return redirect(back)


@staff_required
def proof(request, listing_id: int, ruling_id: int | None = None):
    """The scanned proof of service of a decision the reader may see."""
    x, _back = _served_one(request, listing_id, ruling_id)
    if not x.proof_sha256:
        raise Http404("没有送达回证扫描件")
    return FileResponse(attachments.open_stored(x.proof_sha256), filename=x.proof_name)


@staff_required(write=True)
@require_POST
def service_upload(request):
    """The service list filled in (送达清单), all or nothing: each bad row named."""
    year = _year(request)
    back = f"{reverse('abnormal-decisions')}?{_which(year=year, ground=_ground(request))['q']}"
    upload = request.FILES.get("file")
    if not _can_act(request):
        messages.error(request, "只有局管理员和镇街工作人员可以登记送达")
        return redirect(back)
    if upload is None:
        messages.error(request, "请选择填好的送达清单")
        return redirect(back)
    with uploads.as_file(upload, "service") as path:
        try:
            served, same, problems = actions.do_record_service(actions.read_service(path), _listings(request),
                                                               by=request.user)
        except actions.ListingError as e:
            messages.error(request, str(e))
            return redirect(back)
    if problems:
        messages.error(request, uploads.refused("送达清单", "登记", problems))
    else:
        messages.success(request, f"已登记送达 {served} 户" + (f"，{same} 户此前已登记" if same else ""))
    return redirect(back)


@staff_required
def decisions(request):
    """The written decisions of a year's listings that no text or email reached, to print and
    serve (直接送达、邮寄或公告): all the reader sees, or one township's."""
    if request.GET.get("kind") == "refusals":
        return _refusals(request)
    qs, which = _to_serve(request)
    by_town = list(qs.values_list("town_id", "town__name").annotate(n=Count("id")).order_by("town_id"))
    town = request.GET.get("town", "")
    if town:
        qs = qs.filter(town_id=town)
    if request.GET.get("format") == "xlsx":
        return _service_xlsx(request, which, qs)
    total = qs.count()
    shown = list(qs.select_related("entity").order_by("number")[:PRINTED])
    return render(request, "web/abnormal_decisions.html", {
        "batch": True, **which, "total": total, "decisions": [documents.decision(x) for x in shown],
        "towns": by_town if len(by_town) > 1 else [], "town": {c: n for c, n, _ in by_town}.get(town, ""),
        "town_code": town, "can_act": _can_act(request)})


def _to_serve(request) -> tuple[object, dict]:
    """The listings of the reader's scope whose decisions no text or email reached and that are
    not served yet, for the year or the finding's ground the query names, and its words."""
    year, ground = _year(request), _ground(request)
    qs = _listings(request).filter(ground=ground) if ground else _listings(request).filter(report_year=year)
    return queries.unreached(qs), _which(year=year, ground=ground)


@staff_required
def notice(request):
    """The public notice (公告送达) of the decisions that could be served no other way: its text
    and table to publish, and, once published, its number and day recorded for all of them."""
    qs, which = _to_serve(request)
    back = f"{reverse('abnormal-notice')}?{which['q']}"
    if request.method == "POST":
        if not _can_act(request):
            messages.error(request, "只有局管理员和镇街工作人员可以登记送达")
            return redirect(back)
        published = _posted_day(request, "published_on")
        try:
            if published is None:
                raise actions.ListingError("请填写公告发布日期")
            n = actions.do_serve_by_notice(qs, request.POST.get("number", ""), published, by=request.user)
        except actions.ListingError as e:
            messages.error(request, str(e))
            return redirect(back)
        messages.success(request, f"已登记公告送达 {n} 户，满 {actions.NOTICE_DAYS} 日视为送达")
        return redirect(f"{reverse('abnormal-decisions')}?{which['q']}")
    shown = list(qs.select_related("entity", "town").order_by("number"))
    return render(request, "web/abnormal_notice.html", {
        "listings": shown, "d": documents.notice(shown, which["what"], timezone.localdate()), **which,
        "can_act": _can_act(request), "today": timezone.localdate(), "notice_days": actions.NOTICE_DAYS})


def _refusals(request):
    """The refusals to remove that no text or email reached, to print and serve one by one (each
    recorded on its own page): the appeal's periods run from the service."""
    refusals = queries.unreached_refusals(_listings(request))
    return render(request, "web/abnormal_decisions.html", {
        "batch": True, "kind_refusals": True, "refusals": refusals, "q": "kind=refusals", "label": "不予移出",
        "total": len(refusals),
        "decisions": [documents.ruling(r) for r in refusals[:PRINTED]], "can_act": _can_act(request)})


SERVICE_HEADER = ["决定书文号", "统一社会信用代码", "名称", "主体类型", "镇街", "住所", "列入日期", "送达方式", "送达日期", "签收人或公告编号"]


def _service_xlsx(request, which: dict, qs):
    """The service list (送达清单) of the decisions to serve, every one (not only the page's 500),
    for the post and the stations: where each entity is registered, and empty columns for how
    and when it was served and who signed."""
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("送达清单")
    spreadsheets.append(ws, SERVICE_HEADER)
    n = 0
    for x in qs.select_related("entity", "town").order_by("number").iterator(chunk_size=2000):
        e = x.entity
        spreadsheets.append(ws, [x.number, e.uscc, e.name, e.get_entity_type_display(), x.town.name, e.address or "",
                                 x.listed_on, "", "", ""])
        n += 1
    return audited_xlsx(request, wb, f"abnormal-service-{which['slug']}",
                        f"经营异常名录 {which['what']}未能书面告知的决定书送达清单 {n} 户")


HEADER = ["决定书文号", "统一社会信用代码", "名称", "主体类型", "镇街", "报告年度", "类型", "列入事由", "列入日期", "状态", "已补报",
          "申请移出时间", "申请渠道", "移出日期", "说明", "满三年日期", "列入决定人", "移出、撤销或不予移出决定人", "纸质送达",
          "异议（诉求编号）", "后续决定（文号）", "查实日期", "核查情况", "列入时的登记住所", "申请说明"]


def _xlsx(request, year: int, shown):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("经营异常名录")
    spreadsheets.append(ws, HEADER)
    n = 0
    for x in (shown.select_related("listed_by", "removed_by").prefetch_related("rulings").order_by("number")
              .iterator(chunk_size=2000)):
        spreadsheets.append(ws, [x.number, x.entity_id, x.entity.name, x.entity.get_entity_type_display(), x.town.name,
                                 x.report_year, x.get_kind_display(), x.reason, x.listed_on, x.get_status_display(),
                                 "" if x.on_finding else "是" if x.back_filed else "否", local_time(x.applied_at),
                                 {"portal": "企业在线", "staff": "工作人员代办"}.get(x.applied_channel, ""), x.removed_on,
                                 x.note, actions.serious_on(x), person(x.listed_by), person(x.removed_by),
                                 f"{x.served_on:%Y-%m-%d} {x.get_served_way_display()}：{x.served_note}"
                                 + ("（有送达回证扫描件）" if x.proof_sha256 else "") if x.served_on else "",
                                 x.objection.number if x.objection_id else "", x.later_decisions, x.found_on, x.found,
                                 x.address, x.applied_note])
        n += 1
    ws = wb.create_sheet("拟列入")
    spreadsheets.append(ws, ["统一社会信用代码", "名称", "主体类型", "镇街", "成立日期", "拟作出"])
    due = _candidates(request, year).select_related("town").order_by("uscc")
    for e in due.iterator(chunk_size=2000):
        spreadsheets.append(ws, [e.uscc, e.name, e.get_entity_type_display(), e.town.name, e.established_on,
                                 Listing.Kind(actions.kind_of(e.entity_type)).label])
    ws = wb.create_sheet("无法联系待决定")
    spreadsheets.append(ws, ["统一社会信用代码", "名称", "主体类型", "镇街", "登记住所", "查实日期", "核查情况", "决定期限"])
    found = actions.unreachable_due(entities=scope.filter_by_town(Entity.objects.all(), request.user))
    for d in found:
        e = d["entity"]
        spreadsheets.append(ws, [e.uscc, e.name, e.get_entity_type_display(), e.town.name, e.address or "",
                                 d["found_on"], d["found"], d["decide_by"]])
    return audited_xlsx(request, wb, f"abnormal-{year}", f"经营异常名录 {year} 年度 {n} 条，拟列入 {due.count()} 户，"
                                                         f"无法联系待决定 {len(found)} 户")

