"""Named actions on staff accounts."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from qifu.accounts.models import StaffProfile
from qifu.engine import reference
from qifu.registry.models import Township


class StaffError(ValueError):
    pass


def assign_role(username: str, role: str, town: str | None = None, department: str | None = None
                ) -> tuple[object, str | None]:
    """Create the account if needed (returning its new random password) and set its role.
    ``town`` (name, alias or code) is required for a township officer and refused otherwise;
    ``department`` (its name) likewise for a department member."""
    if role not in StaffProfile.Role.values:
        raise StaffError(f"角色应为 {'、'.join(StaffProfile.Role.values)}，而不是 {role}")
    dep = None
    if role == StaffProfile.Role.DEPARTMENT:
        from qifu.service_requests.models import Department

        if not department:
            raise StaffError("承办部门人员需要指定 --department（部门名称）")
        dep = Department.objects.filter(name=department.strip()).first()
        if dep is None:
            names = "、".join(Department.objects.values_list("name", flat=True)[:30])
            raise StaffError(f"没有这个承办部门：{department}（已有：{names}）")
    elif department:
        raise StaffError("只有承办部门人员（department）按部门限定范围")
    township = None
    if role == StaffProfile.Role.OFFICER:
        if not town:
            raise StaffError("镇街专管员需要指定 --town（镇街名称或代码）")
        name = reference.township_aliases().get(town.strip(), town.strip())
        township = Township.objects.filter(code=name).first() or Township.objects.filter(name=name).first()
        if township is None:
            raise StaffError(f"没有这个镇街：{town}")
    elif town:
        raise StaffError("只有镇街专管员（officer）按镇街限定范围")
    User = get_user_model()
    password = None
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username, password=password)
        # Django admin (后台管理) only for administrators, with every permission there, as
        # docs/web.md says; an account moved to another role loses it.
        user.is_staff = user.is_superuser = role == StaffProfile.Role.ADMIN
        user.save(update_fields=["is_staff", "is_superuser"])
        StaffProfile.objects.update_or_create(user=user, defaults={"role": role, "town": township, "department": dep})
    return user, password
