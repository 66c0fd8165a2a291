"""账号管理: the administrator's page of sign-in accounts, staff and expert partners alike:
who has which role and scope, who signed in when, who still has a first password to change.
The administrator opens an account (its first password shown once, on this response only, to
be handed over in person or by phone), changes a role, resets a forgotten password, disables
an account of someone who left and enables it again, and opens an expert's desk. Changes go
through ``accounts.actions`` and ``experts.actions``; each is written to the audit log, whose
account lines the page shows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from qifu import spreadsheets
from qifu.accounts import scope
from qifu.accounts.actions import StaffError, assign_role, do_reset_password, do_set_active
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import AuditEvent, StaffProfile
from qifu.experts import actions as expert_actions
from qifu.experts.models import Expert
from qifu.registry.models import Township
from qifu.service_requests.models import Department
from qifu.web.downloads import audited_xlsx

Action = AuditEvent.Action


def _accounts():
    """Every account that signs in to qifu: staff with a role, superusers, expert partners."""
    return (get_user_model().objects
            .filter(Q(staff_profile__isnull=False) | Q(is_superuser=True) | Q(expert__isnull=False))
            .select_related("staff_profile__town", "staff_profile__department", "expert", "issued_password")
            .order_by("-is_active", "username"))


def _row(user) -> dict:
    profile = getattr(user, "staff_profile", None)
    expert = getattr(user, "expert", None)
    if profile is not None:
        role = profile.get_role_display()
        where = profile.town.name if profile.town_id else profile.department.name if profile.department_id else "全市"
    elif expert is not None:
        role, where = "专家", f"{expert.name}（{expert.code}）"
    else:
        role, where = StaffProfile.Role.ADMIN.label, "全市"
    issued = getattr(user, "issued_password", None)
    return {"user": user, "role": role, "where": where, "expert": expert,
            "first_password": issued is not None and issued.password == user.password,
            "role_code": profile.role if profile else ("" if expert else StaffProfile.Role.ADMIN)}


def _scope_text(user) -> str:
    r = _row(user)
    return f"{r['role']}（{r['where']}）"


@never_cache
@staff_required(admin=True)
def accounts(request):
    """The list, and the administrator's changes to it (POST, field ``act``)."""
    if request.method == "POST":
        return _act(request)
    return _page(request)


def _page(request, issued: dict | None = None, status: int = 200):
    rows = [_row(u) for u in _accounts()]
    if request.GET.get("format") == "xlsx" and issued is None:
        return _xlsx(request, rows)
    events = AuditEvent.objects.filter(action=Action.ACCOUNT).select_related("user")[:30]
    return render(request, "web/accounts.html", {
        "rows": rows, "issued": issued, "events": events, "roles": StaffProfile.Role.choices,
        "towns": Township.objects.order_by("code"), "departments": Department.objects.order_by("name"),
        "experts": Expert.objects.filter(user__isnull=True).order_by("code"),
        "active": sum(r["user"].is_active for r in rows),
    }, status=status)


def _act(request):
    post, by = request.POST, request.user
    act = post.get("act", "")
    try:
        if act == "create":
            if get_user_model().objects.filter(username=post.get("username", "").strip()).exists():
                raise StaffError(f"用户名 {post.get('username', '').strip()} 已被占用；修改已有账号的角色请在列表中操作")
            user, password = assign_role(post.get("username", ""), post.get("role", ""), post.get("town") or None,
                                         post.get("department") or None, by=by)
            scope.audit(request, Action.ACCOUNT, detail=f"新建账号 {user.username}：{_scope_text(user)}")
            return _page(request, {"username": user.username, "password": password, "why": "新账号"})
        if act == "expert":
            expert = Expert.objects.filter(code=post.get("expert", "")).first()
            if expert is None:
                raise StaffError("请选择专家库中的专家")
            user, password = expert_actions.do_open_account(expert, post.get("username", ""), by=by)
            scope.audit(request, Action.ACCOUNT, detail=f"为专家 {expert.name}（{expert.code}）开通工作台账号 {user.username}")
            return _page(request, {"username": user.username, "password": password, "why": "专家工作台账号"})
        user = get_object_or_404(_accounts(), pk=post.get("user") or 0)
        if act == "role":
            before = _scope_text(user)
            assign_role(user.username, post.get("role", ""), post.get("town") or None, post.get("department") or None,
                        by=by)
            user = _accounts().get(pk=user.pk)  # with the profile as it is now
            scope.audit(request, Action.ACCOUNT, detail=f"修改 {user.username} 的角色：{before} → {_scope_text(user)}")
            messages.success(request, f"{user.username} 现在是{_scope_text(user)}")
        elif act == "reset":
            password = do_reset_password(user, by)
            scope.audit(request, Action.ACCOUNT, detail=f"重设 {user.username} 的密码")
            return _page(request, {"username": user.username, "password": password, "why": "重设的密码"})
        elif act in ("disable", "enable"):
            do_set_active(user, act == "enable", by)
            scope.audit(request, Action.ACCOUNT, detail=f"{'启用' if act == 'enable' else '停用'}账号 {user.username}")
            messages.success(request, f"已{'启用' if act == 'enable' else '停用'} {user.username}")
        else:
            raise StaffError("未知的操作")
    except (StaffError, expert_actions.ExpertActionError) as e:
        messages.error(request, str(e))
        return _page(request, status=400)
    return redirect("accounts")


def _xlsx(request, rows: list[dict]):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("账号")
    spreadsheets.append(ws, ["用户名", "角色", "范围", "状态", "待修改初始密码", "上次登录", "创建时间"])
    for r in rows:
        u = r["user"]
        spreadsheets.append(ws, [u.username, r["role"], r["where"], "在用" if u.is_active else "已停用",
                                 "是" if r["first_password"] else "否",
                                 timezone.localtime(u.last_login).replace(tzinfo=None) if u.last_login else None,
                                 timezone.localtime(u.date_joined).replace(tzinfo=None)])
    return audited_xlsx(request, wb, "accounts", f"账号列表 {len(rows)} 个")

