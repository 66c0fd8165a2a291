"""An account on a password someone else set (its first password, or a reset by an
administrator) sees one page, 修改密码, until it replaces it: every other request, Django admin
and downloads included, is sent there. Signing out stays open.

A session that was found on the holder's own password remembers it (beside the password's
session hash Django keeps), so that each later request costs no query; any change of the
password changes that hash, and the session is looked at again."""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth import HASH_SESSION_KEY
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
        if user is not None and user.is_authenticated and request.path not in _open_paths():
            seen = request.session.get(HASH_SESSION_KEY)
            if seen is None or request.session.get(OWN_PASSWORD) != seen:
                if must_change_password(user):
                    return redirect("password-change")
                if seen is not None:
                    request.session[OWN_PASSWORD] = seen
        return self.get_response(request)


# the session key that holds the password's session hash this session was found to be the
# holder's own password on
OWN_PASSWORD = "qifu_own_password"
