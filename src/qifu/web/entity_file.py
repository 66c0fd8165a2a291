"""One entity's file (一企一档) as a workbook: what its page shows, one sheet per part, for a
visit or a meeting. Names, phone numbers and email addresses stay masked as in any list (the
page's audited reveal is not carried into a file); the export itself is audited."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist

from qifu import spreadsheets
from qifu.web.downloads import audited_xlsx, local_time


def _sheet(wb, title: str, header: list[str], rows) -> None:
    rows = list(rows)
    if not rows:
        return
    ws = wb.create_sheet(title)
    spreadsheets.append(ws, header)
    for r in rows:
        spreadsheets.append(ws, r)


def _num(v) -> float | None:
    return float(v) if isinstance(v, Decimal | int | float) else None


def _one(obj, name: str):
    """The object on the other side of a one-to-one ``name`` seen from its reverse side (a need's
    cooperation, a booking's test batch), or None where there is none."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def export(request, e, ctx: dict):
    """The workbook of entity ``e`` from ``ctx``, the page's context (contacts masked there)."""
    wb = spreadsheets.workbook()
    c = ctx["contact"]
    _sheet(wb, "登记信息", ["项目", "内容"], [
        ["统一社会信用代码", e.uscc], ["名称", e.name], ["主体类型", e.get_entity_type_display()],
        ["企业类型", e.legal_form or ""], ["所属镇街", e.town.name], ["行业代码", e.industry_code or ""],
        ["住所", e.address or ""], ["注册资本（万元）", _num(e.registered_capital)], ["成立日期", e.established_on],
        ["登记状态", e.get_status_display()], ["法定代表人", c["rep"] or ""], ["联系电话", c["phone"] or ""],
        ["电子邮箱", c["email"] or ""]])
    _sheet(wb, "年度报告", ["报告年度", "版次", "报送时间", "当前版本", "与上一版相比"], [
        [year, r.report.revision, local_time(r.report.filed_at), "是" if r.report.is_current else "",
         "；".join(f"{label}：{old} → {new}" for label, old, new in r.changes)]
        for year, revs in ctx["revisions"].items() for r in revs])
    _sheet(wb, "校验问题", ["报告年度", "严重程度", "规则", "状态", "问题", "建议值"], [
        [f.report_year, f.get_severity_display(), f.rule_id, f.get_status_display(), f.shown_message, f.suggestion]
        for f in ctx["findings"]])
    _sheet(wb, "经营异常名录", ["决定书文号", "报告年度", "列入事由", "类型", "列入日期", "状态", "移出或撤销日期", "已补报",
                           "说明", "纸质送达", "后续决定（文号）"], [
        [x.number, x.report_year, x.reason, x.get_kind_display(), x.listed_on, x.get_status_display(), x.removed_on,
         "" if x.on_finding else "是" if x.back_filed else "否", x.note,
         f"{x.served_on:%Y-%m-%d} {x.get_served_way_display()}" if x.served_on else "", x.later_decisions]
        for x in ctx["listings"]])
    _sheet(wb, "年报抽查", ["任务编号", "报告年度", "抽查方式", "检查结果", "检查日期", "检查情况", "改正期限", "改正情况",
                        "列入经营异常名录", "材料提交期限", "依据材料（份）"], [
        [s.inspection.number, s.inspection.year, s.inspection.get_kind_display(), s.get_result_display() or "待检查",
         s.checked_on, s.found, s.correct_by, s.state_label, s.listing.number if s.listing else "",
         s.documents_due, len(s.evidence.all())]
        for s in ctx["samples"]])
    _sheet(wb, "企业诉求", ["诉求编号", "提交时间", "类别", "承办部门", "状态", "评价"], [
        [r.number, local_time(r.submitted_at), r.get_category_display(), r.department.name if r.department_id else "",
         r.get_status_display(), r.get_satisfaction_display() if r.satisfaction else ""] for r in ctx["requests"]])
    _sheet(wb, "惠企政策", ["政策编号", "政策", "年度", "金额（万元）", "状态", "已到账（万元）"], [
        [m.policy.code, m.policy.title, m.policy.year, _num(m.amount), m.get_status_display(),
         _num(sum((p.amount for p in m.payments.all() if p.status == "paid"), Decimal(0)))]
        for m in ctx["policy_matches"]])
    _sheet(wb, "建设项目", ["项目代码", "项目名称", "状态", "各期"], [
        [p.code, p.name, p.get_status_display(), "；".join(f"第{ph.seq}期 {ph.get_state_display()}" for ph in p.phases.all())]
        for p in ctx["projects"]])
    _sheet(wb, "科创伙伴", ["需求编号", "需求", "状态", "合作项目", "专家"], [
        [n.number, n.title, n.get_status_display(), *((c.title, c.expert.name) if (c := _one(n, "cooperation")) else ("", ""))]
        for n in ctx["tech_needs"]])
    _sheet(wb, "实验室预约", ["开始时间", "实验室", "仪器", "检测内容", "费用（元）", "创新券（元）", "状态", "报告编号"], [
        [local_time(b.start), b.instrument.lab.name, b.instrument.name, b.purpose, _num(b.price), _num(b.voucher_amount),
         b.get_status_display(), t.report_no if (t := _one(b, "batch")) else ""] for b in ctx["lab_bookings"]])
    _sheet(wb, "送检", ["委托号", "委托时间", "实验室", "样品", "状态", "报告编号", "结论", "样品去向", "复检的原委托号"], [
        [o.pk, local_time(o.created_at), o.lab.name, o.sample_name, o.get_status_display(),
         o.report_no if o.status == "issued" else "", o.get_conclusion_display() if o.status == "issued" else "",
         o.samples_out_note if o.samples_out_at else "", o.retest_of_id] for o in ctx["lab_orders"]])
    _sheet(wb, "亩均评价", ["年度", "分组", "得分", "名次", "类别", "状态"], [
        [year, r.group_name, _num(r.score), r.rank, r.klass or "", r.evaluation.get_status_display()]
        for year, r in ctx["land"]["history"]])
    _sheet(wb, "电话与上门任务", ["办理日期", "方式", "状态", "结果", "事由"], [
        [t.due_on, t.get_channel_display(), t.get_status_display(), t.outcome, t.message.reason] for t in ctx["tasks"]])
    _sheet(wb, "提醒与通知记录", ["时间", "事项", "内容"], [
        [local_time(ev["at"]), ev["kind"], ev["what"]] for ev in ctx["timeline"]])
    return audited_xlsx(request, wb, f"entity-{e.uscc}", f"一企一档 {e.uscc} {e.name}")
