"""The fields a filer sees, by entity type, in the order of the national form."""

from __future__ import annotations

from decimal import Decimal

from qifu.engine.contract import REPORTS, T

FIELDS = {f.name: f for f in REPORTS.fields}
GROUPS = (
    ("基本信息", ("phone", "email", "postcode", "contact_address", "operating_status", "main_business_activity",
                  "has_website")),
    ("从业人员", ("employees", "employees_female")),
    ("资产状况（单位：万元）", ("total_assets", "total_liabilities", "total_equity", "total_revenue",
                              "main_business_revenue", "total_profit", "net_profit", "total_tax_paid", "turnover",
                              "coop_members", "coop_sales", "coop_surplus", "coop_gov_subsidies", "coop_bank_loans")),
    ("社保信息（人数；金额单位：万元）", tuple(f.name for f in REPORTS.fields if f.name.startswith("si_"))),
)


def groups_for(entity_type: str, values: dict, errors: dict) -> list[dict]:
    out = []
    for title, names in GROUPS:
        items = []
        for name in names:
            if entity_type not in REPORTS.applies_to[name]:
                continue
            f = FIELDS[name]
            v = values.get(name)
            items.append({
                "name": name, "label": f.label, "value": "" if v is None else _show(v),
                "numeric": f.type in (T.MONEY, T.INT), "choices": f.choices, "bool": f.type == T.BOOL,
                "error": errors.get(name, ""),
            })
        if items:
            out.append({"title": title, "fields": items})
    return out


def _show(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, Decimal):
        return format(v.normalize(), "f")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def names_for(entity_type: str) -> list[str]:
    return [n for _, names in GROUPS for n in names if entity_type in REPORTS.applies_to[n]]
