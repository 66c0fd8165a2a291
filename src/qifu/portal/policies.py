"""The firm's policies in the portal (惠企政策直达): every policy it qualifies for, with the
reason and the amount. An automatic policy (免申即享) asks only for the bank account the money
goes to; an application policy takes a statement and attachments. A firm that does not want a
policy declines it (放弃) and hears no more of it; it may take that back while it is still
eligible. One it has accepted and not been paid in full it may give up the rest of (放弃其余资金:
what is paid stays paid; final). An application not yet reviewed may be withdrawn (撤回), to
apply anew or decline.
The account is shown masked, and every change to it is on the match's record."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from qifu.policies import actions, queries
from qifu.policies.models import Match, Payment
from qifu.portal.views import portal_required
from qifu.service_requests import attachments


def _match(entity, match_id: int) -> Match:
    m = queries.for_entity(entity.uscc).filter(pk=match_id).first()
    if m is None:
        raise Http404("没有这项政策匹配")
    return m


@portal_required
def policies_page(request):
    matches = list(queries.for_entity(request.entity.uscc))
    return render(request, "portal/policies.html", {
        "entity": request.entity, "matches": matches,
        "open": [m for m in matches if m.status in queries.ACTIONABLE],
    })


@portal_required
def policy_page(request, match_id: int):
    m = _match(request.entity, match_id)
    application = m.application_or_none
    payments = list(m.payments.select_related("batch").order_by("seq"))
    can = actions.firm_can(m)
    return render(request, "portal/policy.html", {
        "entity": request.entity, "m": m, "payments": payments, "application": application,
        "summary": m.policy.summary, **{f"can_{what}": what in can for what in actions.FIRM_ACTIONS},
        "with_treasury": next((p for p in payments if p.status == Payment.Status.BATCHED), None),
    })


@portal_required
@require_POST
def policy_act(request, match_id: int):
    m = _match(request.entity, match_id)
    post = request.POST
    try:
        if post.get("action") == "confirm":
            actions.do_confirm(m, post.get("bank_name", ""), post.get("bank_account", ""), post.get("account_name", ""))
            m.refresh_from_db()
            if m.status == Match.Status.HELD:
                messages.warning(request, f"已收到确认。兑现前需工作人员复核：{m.hold_reason}")
            else:
                messages.success(request, "已确认收款账户，资金将按期拨付到账，无需再提交材料")
        elif post.get("action") == "apply":
            files = attachments.checked(request.FILES.getlist("files"), what="每份申请")
            bank = (post.get("bank_name", ""), post.get("bank_account", ""), post.get("account_name", ""))
            actions.do_apply(m, post.get("statement", ""), post.get("project", ""), post.get("project_code", ""),
                             files=files, bank=bank if all(bank) else None)
            messages.success(request, "申请已提交，主管部门审核后会通知您")
        elif post.get("action") == "withdraw":
            if not post.get("sure"):
                raise actions.PolicyActionError("请勾选“确认撤回”")
            actions.do_withdraw(m, post.get("reason", ""))
            messages.success(request, "已撤回申请。可以重新提交申请，也可以放弃这项政策")
        elif post.get("action") == "decline":
            if not post.get("sure"):
                raise actions.PolicyActionError("请勾选“确认放弃”")
            given_up = m.status in actions.GIVE_UP
            actions.do_decline(m, post.get("reason", ""))
            messages.success(request, "已放弃这项政策的其余资金，已到账的不受影响" if given_up
                             else "已放弃这项政策，不会再为此联系您。如改变主意，仍可在本页办理")
        else:
            messages.error(request, "请选择要办理的事项")
    except (actions.PolicyActionError, attachments.AttachmentError) as e:
        messages.error(request, str(e))
    return redirect("portal:policy", match_id=m.pk)
