from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from qifu.accounts import scope


def staff_required(view=None, *, write: bool = False, admin: bool = False):
    """A signed-in staff member with a role; ``write`` also refuses read-only leaders, ``admin``
    every role but the administrator's. (An account on a password someone else set never gets
    here: ``accounts.middleware.FirstPassword``.)"""

    def decorate(fn):
        @wraps(fn)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if scope.role_of(request.user) is None:
                if scope.expert_of(request.user) is not None:  # an expert partner: their own desk
                    return redirect("expert-desk")
                raise PermissionDenied("此账号没有分配角色，请联系局管理员")
            if write and not scope.can_write(request.user):
                raise PermissionDenied("只读账号不能修改")
            if admin and scope.role_of(request.user) != scope.Role.ADMIN:
                raise PermissionDenied("只有局管理员可以管理账号")
            return fn(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view else decorate


def expert_required(view):
    """A signed-in expert partner (``request.expert``): their desk, nothing of staff's."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        expert = scope.expert_of(request.user)
        if expert is None:
            raise PermissionDenied("此页面只对已开通账号的专家开放")
        request.expert = expert
        return view(request, *args, **kwargs)

    return wrapper


def signed_in(view):
    """Staff with a role, or an expert partner: pages every account has (its password)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if scope.role_of(request.user) is None and scope.expert_of(request.user) is None:
            raise PermissionDenied("此账号没有分配角色，请联系局管理员")
        return view(request, *args, **kwargs)

    return wrapper
