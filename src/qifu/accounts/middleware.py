"""An account on a password someone else set (its first password, or a reset by an
administrator) sees one page, 修改密码, until it replaces it: every other request, Django admin
and downloads included, is sent there. Signing out stays open."""

from __future__ import annotations

from functools import lru_cache

from django.shortcuts import redirect
from django.urls import reverse

from qifu.accounts.actions import must_change_password


@lru_cache(maxsize=1)
def _open_paths() -> frozenset[str]:
    return frozenset((reverse("password-change"), reverse("logout")))


class FirstPassword:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and request.path not in _open_paths()
                and must_change_password(user)):
            return redirect("password-change")
        return self.get_response(request)
