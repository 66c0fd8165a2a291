"""The written decision (决定书) of a listing, for the bureau to print and serve on an entity
that neither a text nor an email reached (or to hand over at a station), and for the entity to
read in the portal: the title, the number, whom it is addressed to, what was decided and on
what basis, the way off, the way to object and to appeal, the issuing bureau and the date.

The measures are named, not their articles, where the domain reference could not verify the
2025 revisions' numbering (docs/abnormal.md). The appeal is the general law's: administrative
reconsideration within sixty days (行政复议法 art. 20) to the county's people's government,
which since 2024 hears the appeals against its departments, or a suit within six months
(行政诉讼法 art. 46)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from qifu.abnormal.models import Listing
from qifu.engine import reference

BASIS = {
    "enterprise": "《企业信息公示暂行条例》和《企业经营异常名录管理办法》",
    "cooperative": "《农民专业合作社年度报告公示办法》",
    "individual": "《个体工商户年度报告办法》",
}


@dataclass(frozen=True)
class Decision:
    title: str
    number: str
    addressee: str
    paragraphs: list[str]
    issuer: str
    issued_on: dt.date
    annulled: str  # the annulment, when the listing was found wrong; empty otherwise


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def decision(x: Listing) -> Decision:
    """The decision of listing ``x`` (its entity selected with it)."""
    county = reference.county()["county"]
    bureau = f"{county}市场监督管理局"
    e = x.entity
    marked = x.kind == Listing.Kind.MARK
    you = "你户" if marked else "你单位"
    paragraphs = [
        f"经查，{you}未在{x.report_year + 1}年6月30日前报送并公示{x.report_year}年度年度报告。"
        f"依据{BASIS.get(e.entity_type, BASIS['enterprise'])}的规定，本局决定自{_day(x.listed_on)}起将{you}{x.decided}。",
        f"{you}补报{x.report_year}年度年度报告并公示后，可以登录企服平台或到所在地市场监管所申请{x.undone}，"
        f"本局自收到申请之日起{Listing.DECIDE_WITHIN_WORKDAYS}个工作日内作出决定。",
    ]
    if not marked:
        paragraphs.append("列入经营异常名录满三年仍未履行公示义务的，将被列入严重违法失信名单。")
    paragraphs += [
        f"{you}如已按期报送（包括报送纸质年度报告）或依法不需报送，可以向本局提出异议。",
        f"{you}如不服本决定，可以自收到本决定书之日起六十日内向{county}人民政府申请行政复议，"
        f"也可以自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。",
    ]
    annulled = ""
    if x.status == Listing.Status.ANNULLED and x.removed_on:
        annulled = f"本决定已于{_day(x.removed_on)}撤销（列入有误）。"
    return Decision(title=f"{x.get_kind_display()}决定书", number=x.number,
                    addressee=f"{e.name}（统一社会信用代码：{e.uscc}）：", paragraphs=paragraphs, issuer=bureau,
                    issued_on=x.listed_on, annulled=annulled)
