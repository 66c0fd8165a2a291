"""Open311 API keys (`qifu apikey NAME`): a random key shown once; only its SHA-256 is kept,
and a request is matched by it in constant time per candidate."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.utils import timezone

from qifu.service_requests.models import ApiKey


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_issue_key(name: str) -> tuple[ApiKey, str]:
    name = (name or "").strip()
    if not name:
        raise ValueError("请给密钥起一个名字（合作方或设备名称）")
    key = "qf_" + secrets.token_urlsafe(30)
    return ApiKey.objects.create(name=name[:100], prefix=key[3:11], key_hash=_digest(key)), key


def check(key: str | None) -> ApiKey | None:
    """The active key matching ``key``, its last use stamped; None otherwise."""
    if not key or not key.startswith("qf_") or len(key) > 100:
        return None
    digest = _digest(key)
    now = timezone.now()
    for candidate in ApiKey.objects.filter(prefix=key[3:11], revoked_at__isnull=True):
        if hmac.compare_digest(candidate.key_hash, digest):
            if candidate.last_used_at is None or now - candidate.last_used_at > dt.timedelta(minutes=5):
                ApiKey.objects.filter(pk=candidate.pk).update(last_used_at=now)  # to the five minutes
            return candidate
    return None
