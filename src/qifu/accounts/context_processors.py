from qifu.accounts import scope
from qifu.accounts.models import StaffProfile


def staff(request):
    role = scope.role_of(request.user) if hasattr(request, "user") else None
    return {"staff_role": role, "staff_role_label": dict(StaffProfile.Role.choices).get(role, ""),
            "can_write": role in (StaffProfile.Role.ADMIN, StaffProfile.Role.OFFICER)}
