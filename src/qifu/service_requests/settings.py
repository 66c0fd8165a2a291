"""The county's configuration of requests: each category's department and time limits (the
``CategorySetting`` table, seeded from ``engine.requests.categories`` and edited by staff in
the admin), read through a short per-process cache."""

from __future__ import annotations

import time
from dataclasses import dataclass

from qifu.service_requests.models import CategorySetting, Department


@dataclass(frozen=True)
class Limits:
    department_id: int
    department: str
    sign_days: float
    answer_days: float
    notified: bool = False  # the department has an email or phone for notices


_cache: tuple[float, dict[str, Limits]] | None = None


def limits() -> dict[str, Limits]:
    global _cache
    if _cache and _cache[0] > time.monotonic():
        return _cache[1]
    table = {c.code: Limits(c.department_id, c.department.name, float(c.sign_days), float(c.answer_days),
                            bool(c.department.email or c.department.phone))
             for c in CategorySetting.objects.select_related("department")}
    _cache = (time.monotonic() + 30, table)
    return table


def forget() -> None:
    global _cache
    _cache = None


def department_named(name: str) -> Department:
    """The department of that name, made if the county's data names one not yet configured."""
    dep, _ = Department.objects.get_or_create(name=name.strip()[:100])
    return dep
