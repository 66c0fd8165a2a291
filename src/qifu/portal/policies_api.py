"""Policy funding's JSON endpoints (``qifu.api``, /api/v1/policies): the signed-in firm's
policies with the reason, the amount, the installments and what it may do now (``actions``);
confirming the account an automatic policy (免申即享) pays to, applying for an application
policy (需申请: a multipart form with its attachments, checked as the portal's), withdrawing an
application not yet reviewed, declining, and giving up the rest of a policy it accepted. The
same actions and rules as the portal's policy page; amounts in 万元, accounts masked."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, File, Form, Router, Schema, Status, UploadedFile

from qifu.policies import actions, queries
from qifu.policies.models import Match
from qifu.portal.api import Error, PortalSession
from qifu.service_requests import attachments

router = Router(auth=PortalSession(), tags=["惠企政策"])

FirmAction = Literal["confirm", "apply", "decline", "give_up", "withdraw"]


class PaymentOut(Schema):
    seq: int = Field(description="期次")
    amount: str = Field(description="金额（万元）")
    milestone: str = Field(description="拨付节点")
    status: Literal["due", "batched", "paid", "failed", "cancelled"] = Field(
        description="待拨付、拨付中、已到账、拨付失败、已取消")
    paid_on: dt.date | None


class ApplicationOut(Schema):
    status: Literal["submitted", "approved", "rejected", "withdrawn", "returned"] = Field(
        description="待审核、已通过、未通过、已撤回、退回补正")
    submitted_at: dt.datetime
    reviewed_at: dt.datetime | None
    review_reason: str = Field(description="审核意见（未通过或退回补正的原因）")


class MatchOut(Schema):
    id: int
    policy: str = Field(description="政策编号")
    title: str
    mode: Literal["automatic", "application"] = Field(description="automatic 免申即享（确认收款账户即可）/ application 需申请")
    year: int = Field(description="按哪一年度的数据认定")
    department: str = Field(description="主管部门")
    summary: str
    amount: str = Field(description="金额（万元）")
    reason: str = Field(description="符合理由")
    status: Literal["eligible", "applied", "confirmed", "held", "paid", "lapsed", "rejected", "declined"]
    status_label: str
    hold_reason: str = Field(description="待复核的原因")
    gave_up_rest: bool = Field(description="已放弃其余资金（不能撤回）")
    account: str = Field(description="收款账号（脱敏）")
    payments: list[PaymentOut]
    application: ApplicationOut | None
    actions: list[FirmAction] = Field(description="现在可以办理的事项：confirm 确认收款账户、apply 申请、decline 放弃、"
                                                  "give_up 放弃其余资金、withdraw 撤回申请")


class AccountIn(Schema):
    bank_name: str = Field(min_length=2, max_length=100, description="开户银行")
    bank_account: str = Field(min_length=6, max_length=40, description="银行账号")
    account_name: str = Field(min_length=2, max_length=200, description="账户名称（须与企业名称一致）")


class DeclineIn(Schema):
    reason: str = Field("", max_length=200, description="放弃原因（可不填）")
    give_up_rest: bool = Field(False, description="已确认或已通过的政策：放弃尚未拨付的其余资金（不能撤回），须为 true")


class WithdrawIn(Schema):
    reason: str = Field("", max_length=200, description="撤回原因（可不填）")


def _match(m: Match) -> dict:
    application = m.application_or_none
    p = m.policy
    return {"id": m.pk, "policy": p.code, "title": p.title, "mode": p.mode, "year": p.year, "department": p.department,
            "summary": p.summary, "amount": f"{m.amount.normalize():f}", "reason": m.reason, "status": m.status,
            "status_label": m.get_status_display(), "hold_reason": m.hold_reason, "gave_up_rest": m.gave_up_rest,
            "account": m.masked_account,
            "payments": [{"seq": x.seq, "amount": f"{x.amount.normalize():f}", "milestone": x.milestone,
                          "status": x.status, "paid_on": x.paid_on} for x in sorted(m.payments.all(), key=lambda x: x.seq)],
            "application": None if application is None else {
                "status": application.status, "submitted_at": application.submitted_at,
                "reviewed_at": application.reviewed_at, "review_reason": application.review_reason},
            "actions": actions.firm_can(m)}


def _mine(request):
    return queries.for_entity(request.entity.uscc).select_related("application").prefetch_related("payments")


def _one(request, match_id: int) -> Match | None:
    return _mine(request).filter(pk=match_id).first()


@router.get("", response=list[MatchOut], summary="本企业符合的惠企政策、金额、拨付进度和可以办理的事项")
def matches(request):
    return [_match(m) for m in _mine(request)]


def _done(request, match_id: int, act) -> Status:
    m = _one(request, match_id)
    if m is None:
        return Status(404, {"detail": "没有这项政策匹配"})
    try:
        act(m)
    except (actions.PolicyActionError, attachments.AttachmentError) as e:
        return Status(400, {"detail": str(e)})
    return Status(200, _match(_one(request, match_id)))


@router.post("/{match_id}/confirm", response={200: MatchOut, 400: Error, 404: Error},
             summary="免申即享：确认（或更改）收款账户，资金按期拨付")
def confirm(request, match_id: int, body: AccountIn):
    return _done(request, match_id, lambda m: actions.do_confirm(m, body.bank_name, body.bank_account, body.account_name))


@router.post("/{match_id}/apply", response={200: MatchOut, 400: Error, 404: Error},
             summary="需申请的政策：提交申请说明和附件（PDF 或图片，每份不超过 10 MB）")
def apply(request, match_id: int, statement: str = Form(..., max_length=5000, description="申请说明（至少10个字）"),
          project: str = Form("", max_length=200, description="申报项目"),
          project_code: str = Form("", max_length=60, description="项目编号"),
          bank_name: str = Form("", max_length=100, description="开户银行（三项都填才记录收款账户）"),
          bank_account: str = Form("", max_length=40), account_name: str = Form("", max_length=200),
          files: File[list[UploadedFile]] = None):
    def act(m):
        checked = attachments.checked(files or [], what="每份申请")
        bank = (bank_name, bank_account, account_name)
        actions.do_apply(m, statement, project, project_code, files=checked, bank=bank if all(bank) else None)

    return _done(request, match_id, act)


@router.post("/{match_id}/withdraw", response={200: MatchOut, 400: Error, 404: Error},
             summary="撤回尚未审核的申请（可重新申请或放弃）")
def withdraw(request, match_id: int, body: WithdrawIn):
    return _done(request, match_id, lambda m: actions.do_withdraw(m, body.reason))


@router.post("/{match_id}/decline", response={200: MatchOut, 400: Error, 404: Error},
             summary="放弃这项政策；已确认或已通过的，放弃尚未拨付的其余资金（give_up_rest=true，不能撤回）")
def decline(request, match_id: int, body: DeclineIn):
    return _done(request, match_id, lambda m: actions.do_decline(m, body.reason, rest=body.give_up_rest))
