"""One firm's sheet (一企一单) in Python: its group, area, each indicator's value and points,
and its score, from its own data and its group's averages; what the portal shows the firm
and what staff check an objection against. A re-implementation of ``evaluate.sql`` for one
firm, held to it by a test on every firm of a county (the rank and class need the whole group:
they come from the stored evaluation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qifu.engine.land.method import INDICATORS, Method

NO_LAND = "无用地信息"


@dataclass
class Sheet:
    uscc: str
    group: str | None
    area_mu: float | None
    values: dict[str, float | None] = field(default_factory=dict)
    points: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None
    note: str = ""


def area_and_group(method: Method, above_threshold: bool, parcels: list[tuple[str, float]]) -> tuple[str | None, float]:
    """(group, area) from the firm's parcels [(role, area_mu)], whether or not the method has
    the group; group None: below threshold with no land."""
    owned = sum(a for role, a in parcels if role == "owner")
    rented = sum(a for role, a in parcels if role == "tenant")
    large = float(method.large_mu)
    if above_threshold:
        group, area = "above", owned + rented
    elif owned >= large:
        group, area = "below_large", owned
    elif owned > 0:
        group, area = "below_small", owned
    elif rented > 0:
        group, area = "tenant", rented
    else:
        return None, 0.0
    return group, area


def value(name: str, data: dict) -> float | None:
    num, den, factor = INDICATORS[name]
    a, b = data.get(num), data.get(den)
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b) * factor


def compute(method: Method, data: dict, parcels: list[tuple[str, float]],
            averages: dict[str, float | None] | None = None) -> Sheet:
    """``data``: the firm's indicators (contract §1.9 names); ``averages``: its group's mean
    points per indicator over the firms that have a value (for ``missing: group_average``)."""
    group, area = area_and_group(method, bool(data.get("above_threshold")), parcels)
    if group not in method.groups:
        return Sheet(data["uscc"], None, None, note=NO_LAND if group is None else "方法未设此组，不参评")
    sheet = Sheet(data["uscc"], group, area)
    inputs = {**data, "area_mu": area}
    total = 0.0
    for name, ind in method.groups[group].items():
        v = value(name, inputs)
        sheet.values[name] = v
        if v is None:
            p = ((averages or {}).get(name) or 0.0) if ind.missing == "group_average" else 0.0
        else:
            p = max(v / float(ind.benchmark) * float(ind.weight), 0.0)
            if method.cap is not None:
                p = min(p, float(method.cap * ind.weight))
        sheet.points[name] = p
        total += p
    sheet.score = total
    veto, exempt = (data.get("veto") or "").strip(), (data.get("exempt") or "").strip()
    sheet.note = f"否决：{veto}" if veto else f"不参评：{exempt}（按B类管理）" if exempt else ""
    return sheet
