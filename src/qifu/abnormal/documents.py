"""The written decisions (决定书) of a listing and of what was decided on it later (its removal,
a refusal to remove, its annulment). The listing's, for the bureau to print and serve on an entity
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

from django.utils import timezone

from qifu.abnormal.models import Listing, Ruling
from qifu.engine import reference

BASIS = {
    "enterprise": "《企业信息公示暂行条例》和《企业经营异常名录管理办法》",
    "cooperative": "《农民专业合作社年度报告公示办法》",
    "individual": "《个体工商户年度报告办法》",
}


@dataclass(frozen=True)
class Document:
    title: str
    number: str
    addressee: str
    paragraphs: list[str]
    issuer: str
    issued_on: dt.date
    annulled: str  # the annulment, when the listing was found wrong; empty otherwise


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _you(x: Listing) -> str:
    return "你户" if x.kind == Listing.Kind.MARK else "你单位"


def _appeal(x: Listing, county: str) -> str:
    return (f"{_you(x)}如不服本决定，可以自收到本决定书之日起六十日内向{county}人民政府申请行政复议，"
            f"也可以自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。")


def _basis(x: Listing) -> str:
    return BASIS.get(x.entity.entity_type, BASIS["enterprise"])


def _off(x: Listing) -> str:
    """What a removal or an annulment does, as its decision says it."""
    return f"恢复{_you(x)}的正常记载状态" if x.kind == Listing.Kind.MARK else f"将{_you(x)}{x.undone}"


def _addressee(x: Listing) -> str:
    return f"{x.entity.name}（统一社会信用代码：{x.entity.uscc}）："


def decision(x: Listing) -> Document:
    """The decision of listing ``x`` (its entity selected with it)."""
    county = reference.county()["county"]
    bureau = f"{county}市场监督管理局"
    marked = x.kind == Listing.Kind.MARK
    you = _you(x)
    within = f"本局自收到申请之日起{Listing.DECIDE_WITHIN_WORKDAYS}个工作日内"
    if x.unreachable:
        at = f"（{x.address}）" if x.address else ""
        paragraphs = [
            f"经查，本局于{_day(x.found_on or x.listed_on)}通过{you}登记的住所或者经营场所{at}无法与{you}取得联系"
            f"（{x.found.rstrip('。')}）。依据{_basis(x)}的规定，本局决定自{_day(x.listed_on)}起将{you}{x.decided}。",
            f"{you}依法办理住所或者经营场所变更登记，或者能够重新通过登记的住所或者经营场所取得联系的，可以登录企服平台"
            f"或到所在地市场监管所申请{x.undone}，{within}核实并作出决定。",
        ]
        if not marked:
            paragraphs.append("列入经营异常名录满三年仍未移出的，将被列入严重违法失信名单。")
        paragraphs.append(f"{you}如在本局核查时能够通过登记的住所或者经营场所取得联系，可以向本局提出异议。")
    elif x.false_info:
        paragraphs = [
            f"经查，{you}公示的信息隐瞒真实情况、弄虚作假（{_day(x.found_on or x.listed_on)}查实：{x.found.rstrip('。')}）。"
            f"依据{_basis(x)}的规定，本局决定自{_day(x.listed_on)}起将{you}{x.decided}。",
            f"{you}更正公示的信息后，可以登录企服平台或到所在地市场监管所申请{x.undone}，{within}核实并作出决定。",
        ]
        if not marked:
            paragraphs.append("列入经营异常名录满三年仍未移出的，将被列入严重违法失信名单。")
        paragraphs.append(f"{you}如认为公示的信息真实、本局查实有误，可以向本局提出异议。")
    elif x.uncorrected:
        paragraphs = [
            f"经查，本局在年报抽查中责令{you}限期更正公示的信息，{you}未在责令的期限内公示"
            f"（{_day(x.found_on or x.listed_on)}查实：{x.found.rstrip('。')}）。"
            f"依据{_basis(x)}的规定，本局决定自{_day(x.listed_on)}起将{you}{x.decided}。",
            f"{you}按责令更正公示的信息后，可以登录企服平台或到所在地市场监管所申请{x.undone}，{within}核实并作出决定。",
        ]
        if not marked:
            paragraphs.append("列入经营异常名录满三年仍未移出的，将被列入严重违法失信名单。")
        paragraphs.append(f"{you}如已在责令的期限内更正，可以向本局提出异议。")
    else:
        paragraphs = [
            f"经查，{you}未在{x.report_year + 1}年6月30日前报送并公示{x.report_year}年度年度报告。"
            f"依据{_basis(x)}的规定，本局决定自{_day(x.listed_on)}起将{you}{x.decided}。",
            f"{you}补报{x.report_year}年度年度报告并公示后，可以登录企服平台或到所在地市场监管所申请{x.undone}，"
            f"{within}作出决定。",
        ]
        if not marked:
            paragraphs.append("列入经营异常名录满三年仍未履行公示义务的，将被列入严重违法失信名单。")
        paragraphs.append(f"{you}如已按期报送（包括报送纸质年度报告）或依法不需报送，可以向本局提出异议。")
    paragraphs.append(_appeal(x, county))
    annulled = ""
    if x.status == Listing.Status.ANNULLED and x.removed_on:
        by = next((f"，{r.number}" for r in x.rulings.all() if r.kind == Ruling.Kind.ANNUL), "")
        annulled = f"本决定已于{_day(x.removed_on)}撤销（列入有误{by}）。"
    return Document(title=f"{x.get_kind_display()}决定书", number=x.number, addressee=_addressee(x),
                    paragraphs=paragraphs, issuer=bureau, issued_on=x.listed_on, annulled=annulled)


def ruling(r: Ruling) -> Document:
    """The written decision of a removal, a refusal to remove or an annulment (``r``, its listing
    and the listing's entity selected with it)."""
    county = reference.county()["county"]
    x = r.listing
    you = _you(x)
    why = x.get_ground_display() if x.on_finding else f"未按规定期限公示{x.report_year}年度年度报告"
    what = f"{you}因{why}，本局于{_day(x.listed_on)}作出{x.number}决定，将{you}{x.decided}。"
    applied = f"{you}于{_day(timezone.localdate(r.applied_at))}申请{x.undone}。" if r.applied_at else ""
    if r.kind == Ruling.Kind.REMOVE and x.unreachable:
        paragraphs = [what, f"{applied}经核实，{r.reason.rstrip('。')}，{you}已能够通过登记的住所或者经营场所取得联系，"
                            f"符合{x.undone}的条件。依据{_basis(x)}的规定，本局决定自{_day(r.decided_on)}起{_off(x)}。"]
    elif r.kind == Ruling.Kind.REMOVE and (x.false_info or x.uncorrected):
        paragraphs = [what, f"{applied}经核实，{r.reason.rstrip('。')}，{you}已更正公示的信息，"
                            f"符合{x.undone}的条件。依据{_basis(x)}的规定，本局决定自{_day(r.decided_on)}起{_off(x)}。"]
    elif r.kind == Ruling.Kind.REMOVE:
        paragraphs = [what, f"{you}已补报{x.report_year}年度年度报告并公示。{applied}经审查，符合{x.undone}的条件。"
                            f"依据{_basis(x)}的规定，本局决定自{_day(r.decided_on)}起{_off(x)}。"]
    elif r.kind == Ruling.Kind.REFUSE:
        paragraphs = [what, f"{applied}经审查，{r.reason.rstrip('。')}，不符合{x.undone}的条件。"
                            f"依据{_basis(x)}的规定，本局决定不予{x.undone}。",
                      f"{you}纠正上述情况后，可以再次申请{x.undone}。", _appeal(x, county)]
    else:
        paragraphs = [what, f"经核实，{r.reason.rstrip('。')}，该决定有误。本局决定撤销{x.number}决定，"
                            f"自{_day(r.decided_on)}起{_off(x)}，"
                            f"该记录不作为{you}的经营异常记录。"]
    return Document(title=r.title, number=r.number, addressee=_addressee(x), paragraphs=paragraphs,
                    issuer=f"{county}市场监督管理局", issued_on=r.decided_on, annulled="")


def notice(listings: list[Listing], what: str, today: dt.date) -> Document:
    """The public notice (公告) that serves the decisions of ``listings`` (their entities selected
    with them) that could be served no other way; ``what``, which of them: 2025 年度, 无法联系.
    The table of entities is the page's; the notice says what was decided and where to read it."""
    from qifu.abnormal.actions import NOTICE_DAYS

    county = reference.county()["county"]
    bureau = f"{county}市场监督管理局"
    grounds = {x.ground for x in listings}
    why = ("通过登记的住所或者经营场所无法联系" if grounds == {Listing.Ground.UNREACHABLE} else
           "无法直接送达或者邮寄送达")
    paragraphs = [
        f"本局对下列 {len(listings)} 户市场主体作出了列入经营异常名录（个体工商户为标注经营异常状态）的决定（{what}）。"
        f"因{why}，依法向其公告送达。",
        f"自本公告发布之日起满{NOTICE_DAYS}日，即视为送达。各主体可以登录企服平台查看、打印决定书，或者到所在地市场监管所领取；"
        f"对决定不服的，可以自送达之日起六十日内向{county}人民政府申请行政复议，也可以自送达之日起六个月内依法向人民法院提起行政诉讼。",
        "补报年度报告、更正公示的信息、办理住所或者经营场所变更登记或者能够重新取得联系的，可以依法申请移出。",
    ]
    return Document(title="关于送达列入经营异常名录决定书的公告", number="", addressee="", paragraphs=paragraphs,
                    issuer=bureau, issued_on=today, annulled="")
