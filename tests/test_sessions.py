"""The session store (Django's database sessions, read with one raw query)."""

import datetime as dt

import pytest
from django.utils import timezone

from qifu.accounts.sessions import SessionStore


@pytest.mark.django_db
def test_a_stored_session_reads_back_and_an_expired_or_unknown_one_is_empty():
    store = SessionStore()
    store["portal_uscc"] = "91330282MA2A00017X"
    store.create()
    assert SessionStore(store.session_key)["portal_uscc"] == "91330282MA2A00017X"

    store.set_expiry(timezone.now() - dt.timedelta(seconds=1))
    store.save()
    expired = SessionStore(store.session_key)
    assert expired.get("portal_uscc") is None and expired.session_key is None

    unknown = SessionStore("x" * 32)
    assert unknown.get("portal_uscc") is None and unknown.session_key is None
    assert SessionStore("short").get("portal_uscc") is None  # not a valid key: never queried
