"""Named actions on staff accounts: create one or change its role (`qifu staff`, the
administrator's account page), issue a password to be changed at the next sign-in, disable or
enable an account."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from qifu.accounts.models import IssuedPassword, StaffProfile
from qifu.engine import reference
from qifu.registry.models import Township


class StaffError(ValueError):
    pass


def check_username(username: str) -> str:
    """``username`` stripped, or StaffError: 2 to 150 letters (a Chinese name too), digits and
    @.+-_."""
    username = (username or "").strip()
    if not 2 <= len(username) <= 150:
        raise StaffError("用户名应为 2 到 150 个字符")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise StaffError(f"用户名 {username} 只能含字母、汉字、数字和 @ . + - _") from None
    return username


def issue_password(user, by=None, now: dt.datetime | None = None) -> str:
    """A new random password for ``user`` set by someone else (``by``; None from the command
    line), returned to be handed over once; its holder must change it at the next sign-in."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    record_issued(user, by, now)
    return password


def record_issued(user, by=None, now: dt.datetime | None = None) -> None:
    """``user``'s current password recorded as set by someone else (``by``): its holder must
    replace it at the next sign-in (``must_change_password``)."""
    IssuedPassword.objects.update_or_create(user=user, defaults={
        "password": user.password, "issued_at": now or timezone.now(), "issued_by": by})


def must_change_password(user) -> bool:
    """Whether ``user`` still signs in with a password someone else issued."""
    return user.is_authenticated and IssuedPassword.objects.filter(user=user, password=user.password).exists()


def _admins():
    """Active accounts that administer: the administrator role, or a superuser without a role."""
    return get_user_model().objects.filter(is_active=True).filter(
        Q(staff_profile__role=StaffProfile.Role.ADMIN) | Q(is_superuser=True, staff_profile__isnull=True))


def _keep_an_admin(user) -> None:
    """Refuses to take the role from ``user`` when no other active administrator would be left.
    Inside the caller's transaction, the administrators' accounts are locked first (PostgreSQL;
    SQLite's writers take turns anyway), so two administrators taking each other's role at the
    same moment cannot both pass: the second waits, then counts again."""
    list(_admins().select_for_update(of=("self",)).values_list("pk", flat=True))
    if not _admins().exclude(pk=user.pk).exists():
        raise StaffError(f"{user.username} 是唯一在用的局管理员：先让另一个账号成为局管理员")


def assign_role(username: str, role: str, town: str | None = None, department: str | None = None,
                by=None) -> tuple[object, str | None]:
    """Create the account if needed (returning its new random password, to be changed at the
    first sign-in) and set its role. ``town`` (name, alias or code) is required for a township
    officer and refused otherwise; ``department`` (its name) likewise for a department member.
    The last active administrator keeps the role."""
    username = check_username(username)
    if role not in StaffProfile.Role.values:
        raise StaffError(f"角色应为 {'、'.join(StaffProfile.Role.values)}，而不是 {role}")
    dep = None
    if role == StaffProfile.Role.DEPARTMENT:
        from qifu.service_requests.models import Department

        if not department:
            raise StaffError("承办部门人员需要指定承办部门（命令行用 --department 部门名称）")
        dep = Department.objects.filter(name=department.strip()).first()
        if dep is None:
            names = "、".join(Department.objects.values_list("name", flat=True)[:30])
            raise StaffError(f"没有这个承办部门：{department}（已有：{names}）")
    elif department:
        raise StaffError("只有承办部门人员（department）按部门限定范围")
    township = None
    if role == StaffProfile.Role.OFFICER:
        if not town:
            raise StaffError("镇街专管员需要指定所属镇街（命令行用 --town 镇街名称或代码）")
        name = reference.township_aliases().get(town.strip(), town.strip())
        township = Township.objects.filter(code=name).first() or Township.objects.filter(name=name).first()
        if township is None:
            raise StaffError(f"没有这个镇街：{town}")
    elif town:
        raise StaffError("只有镇街专管员（officer）按镇街限定范围")
    User = get_user_model()
    password = None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username)
            password = issue_password(user, by)
        elif role != StaffProfile.Role.ADMIN and _admins().filter(pk=user.pk).exists():
            _keep_an_admin(user)
        elif getattr(user, "expert", None) is not None:
            raise StaffError(f"{username} 是专家工作台的账号，不能兼任工作人员")
        # Django admin (后台管理) only for administrators, with every permission there, as
        # docs/web.md says; an account moved to another role loses it.
        user.is_staff = user.is_superuser = role == StaffProfile.Role.ADMIN
        user.save(update_fields=["is_staff", "is_superuser"])
        StaffProfile.objects.update_or_create(user=user, defaults={"role": role, "town": township, "department": dep})
    return user, password


def do_reset_password(user, by=None) -> str:
    """A new password for an account whose holder forgot theirs, to be changed at the next
    sign-in; the old one stops working, and so do the account's sessions (Django signs a
    session with the password's hash). The sign-in page's lock on the account after too many
    wrong passwords is lifted, or the holder could not use the new one for half an hour."""
    from axes.utils import reset

    if not user.is_active:
        raise StaffError(f"{user.username} 已停用：先启用再重设密码")
    password = issue_password(user, by)
    reset(username=user.username)
    return password


def do_set_active(user, active: bool, by) -> None:
    """Disable an account (someone who left or moved: it can no longer sign in, and its open
    sessions end at their next request) or enable it again. Nobody disables their own account,
    nor the last active administrator."""
    if not active and by is not None and user.pk == by.pk:
        raise StaffError("不能停用自己的账号")
    with transaction.atomic():
        if not active:
            _keep_an_admin(user)
        user.is_active = active
        user.save(update_fields=["is_active"])
