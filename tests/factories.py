"""Small contract files for tests, written the way bureau exports arrive."""

from __future__ import annotations

from pathlib import Path

from qifu.engine import uscc

# Valid credit codes (GB 32100 check characters computed, synthetic bodies).
ENT1 = uscc.make("91330282MA2A0001" + "X")
ENT2 = uscc.make("91330282MA2A0002" + "7")
IND1 = uscc.make("92330282MA2A0003" + "5")

REGISTRY_HEADER = "uscc,name,entity_type,town,established_on,status,registered_capital,phone,industry_code"


def registry_rows() -> list[str]:
    return [
        f"{ENT1},慈溪市华鑫电器有限公司,enterprise,浒山街道,2018-05-02,active,500,13905741234,C3854",
        f"{ENT2},慈溪市恒瑞轴承有限公司,企业,周巷镇,2015/3/1,存续,1200.5,0574-63001234,3451",
        f"{IND1},慈溪市坎墩佳宝服饰店,个体工商户,坎墩街道,2021年6月8日,存续,5,13512345678,F5232",
    ]


REPORTS_HEADER = (
    "uscc,report_year,filed_at,phone,postcode,contact_address,operating_status,employees,employees_female,"
    "total_assets,total_liabilities,total_equity,total_revenue,main_business_revenue,total_tax_paid,turnover"
)


def report_rows() -> list[str]:
    return [
        f"{ENT1},2025,2026-03-02 10:15:00,13905741234,315300,浙江省慈溪市浒山街道新城大道1号,open,25,10,"
        "1500.5,600,900.5,2300,2100,80.25,",
        f"{ENT2},2025,2026-04-10T09:00:00+08:00,0574-63001234,315324,浙江省慈溪市周巷镇人民路8号,开业,120,40,"
        "8800,3000,5800,12000,11800,420,",
        f"{IND1},2025,2026-05-20,13512345678,315303,浙江省慈溪市坎墩街道镇东路3号,open,2,,,,,,,0.5,35.2",
    ]


def write(path: Path, header: str, rows: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


def portal_client(uscc: str):
    """A Django test client signed in to the portal as ``uscc``."""
    from django.test import Client

    c = Client()
    session = c.session
    session["portal_uscc"] = uscc
    session.save()
    return c
