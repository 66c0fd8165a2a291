"""Who may see what: every staff query goes through here, so township isolation is enforced in
the query, not in a template.

- administrator (局管理员): the whole county, may change things;
- township officer (镇街专管员): only entities of their own township, and their reports,
  findings and tasks; may close tasks, add notes and see contact details (audited);
- leader (领导): the whole county, read-only, contact details masked;
- department member (承办部门人员): the enterprise requests assigned to their department, which
  they sign for, answer and transfer; no other entity data.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from qifu.accounts.clients import client_ip
from qifu.accounts.models import AuditEvent, StaffProfile
from qifu.registry.models import Entity

Role = StaffProfile.Role


def role_of(user) -> str | None:
    if not user.is_authenticated:
        return None
    profile = getattr(user, "staff_profile", None)
    if profile is not None:
        return profile.role
    return Role.ADMIN if user.is_superuser else None


def expert_of(user):
    """The expert partner a signed-in account belongs to (`qifu expert-account`), or None; such
    an account has no staff role and sees only its own desk."""
    if not user.is_authenticated or getattr(user, "staff_profile", None) is not None:
        return None
    return getattr(user, "expert", None)


def town_of(user) -> str | None:
    """The township code an officer is confined to; None for county-wide roles."""
    if role_of(user) == Role.OFFICER:
        return user.staff_profile.town_id
    return None


def can_write(user) -> bool:
    return role_of(user) in (Role.ADMIN, Role.OFFICER, Role.DEPARTMENT)


def department_of(user) -> int | None:
    """The department a department member is confined to; None for other roles."""
    if role_of(user) == Role.DEPARTMENT:
        return user.staff_profile.department_id
    return None


def can_see_contacts(user) -> bool:
    return role_of(user) in (Role.ADMIN, Role.OFFICER)


def filter_by_town(qs: QuerySet, user, path: str = "town", department=None) -> QuerySet:
    """``qs`` narrowed to the user's township; ``path`` leads to the township, e.g.
    ``entity__town``. A department member sees what ``department(qs)`` leaves, by default
    nothing: no entity's records but through requests."""
    role = role_of(user)
    if role is None:
        raise PermissionDenied
    if role == Role.OFFICER:
        town = town_of(user)
        return qs.filter(**{path: town}) if town else qs.none()
    if role == Role.DEPARTMENT:
        return department(qs) if department is not None else qs.none()
    return qs


def filter_requests(qs: QuerySet, user) -> QuerySet:
    """Requests a user may see: a department its own department's, a township officer (the
    station) its township's, administrators and leaders every one."""
    def own(q):
        return q.filter(department_id=department_of(user)) if department_of(user) else q.none()

    return filter_by_town(qs, user, "town_id", department=own)


def entities(user) -> QuerySet:
    return filter_by_town(Entity.objects.all(), user)


def entity_or_403(user, uscc: str) -> Entity:
    """The entity, if it exists (404) and the user may see it (403)."""
    try:
        entity = Entity.objects.select_related("town").get(uscc=uscc)
    except Entity.DoesNotExist:
        raise Http404("没有这个主体") from None
    if not entities(user).filter(uscc=uscc).exists():
        raise PermissionDenied("该主体不属于您负责的镇街")
    return entity


def entity_in_form(user, uscc: str) -> tuple[Entity | None, str]:
    """The entity a form names by its credit code, if the user may see it; else None and why."""
    uscc = (uscc or "").strip().upper()
    try:
        return entity_or_403(user, uscc), ""
    except Http404:
        return None, f"没有统一社会信用代码为 {uscc[:18]} 的主体"


def audit(request, action: str, uscc: str = "", detail: str = "") -> None:
    AuditEvent.objects.create(user=request.user, action=action, uscc=uscc, detail=detail[:500],
                              ip=client_ip(request))


def filter_policy_matches(qs: QuerySet, user) -> QuerySet:
    """Policy matches a user may see: a township officer their township's firms, a department
    member the matches of the policies their department runs, administrators and leaders all."""
    def own(q):
        dep = user.staff_profile.department
        return q.filter(policy__department=dep.name) if dep else q.none()

    return filter_by_town(qs, user, department=own)


def can_review_policy(user, policy) -> bool:
    """Administrators, and members of the department that runs the policy."""
    role = role_of(user)
    if role == Role.ADMIN:
        return True
    return role == Role.DEPARTMENT and bool(user.staff_profile.department) and \
        user.staff_profile.department.name == policy.department


def _construction_department_id() -> int | None:
    from qifu.service_requests.models import CategorySetting

    return CategorySetting.objects.filter(code="construction").values_list("department_id", flat=True).first()


def filter_projects(qs: QuerySet, user) -> QuerySet:
    """Construction projects a user may see: a township officer their township's, members of the
    department that handles construction acceptance (the construction category's) every one,
    other departments none; administrators and leaders all."""
    def own(q):
        return q if department_of(user) and department_of(user) == _construction_department_id() else q.none()

    return filter_by_town(qs, user, department=own)
