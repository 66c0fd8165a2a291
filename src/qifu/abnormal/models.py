"""An entity put on the abnormal-operation list (经营异常名录), for a report year it did not file
by 30 June, because it cannot be reached at its registered address, because what it published
was found false, or because it did not correct it by the day a spot check ordered; and its way
off it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from qifu.engine.requests import workdays
from qifu.registry.models import Entity, Township


class Service(models.TextChoices):
    """How a written decision was served on an entity no text or email reached."""

    HAND = "hand", "直接送达"
    POST = "post", "邮寄送达"
    NOTICE = "notice", "公告送达"


class PaperService(models.Model):
    """A written decision served on paper (送达), where no text or email reached the entity: how,
    on which day, who signed for it (the post's number, the public notice's), who recorded it,
    and the signed proof of service scanned (送达回证, the post's receipt, the notice as published:
    an image or a PDF kept with the attachments, ``service_requests.attachments``, under its
    SHA-256). A listing's decision, and a refusal to remove (the unfavourable later one)."""

    Service = Service

    served_on = models.DateField("送达日期", null=True, blank=True)
    served_way = models.CharField("送达方式", max_length=8, choices=Service.choices, blank=True)
    served_note = models.CharField("签收人或公告编号", max_length=200, blank=True)
    served_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name="登记送达的人")
    proof_name = models.CharField("送达回证扫描件", max_length=200, blank=True)
    proof_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True

    @property
    def decided_day(self) -> dt.date:
        """The day of the decision served: no service before it."""
        raise NotImplementedError


# a listing on a finding, named in a line or a title (a year's is named by its year)
ABOUT = {"unreachable": "无法联系", "false_info": "信息不实", "uncorrected": "逾期未改正"}


class Listing(PaperService):
    """One entity listed for one report year (列入经营异常名录; an individual business is marked
    经营异常状态 instead), by a decision with its number; it comes off (移出) once it has filed
    the year's report (补报), on its application or on staff's own motion. Or listed because a
    visit found it not at its registered address (``Ground.UNREACHABLE``: no report year), off once
    staff have checked it can be reached there again or has registered another address. A listing found wrong
    (the report was filed in time after all, on paper or before the data reached qifu) is annulled
    (撤销), on the entity's objection (异议, an enterprise request) or staff's own finding."""

    class Kind(models.TextChoices):
        LIST = "list", "列入经营异常名录"  # enterprises and farmer cooperatives
        MARK = "mark", "标注经营异常状态"  # individual businesses

    class Ground(models.TextChoices):
        """Why it was listed (《企业经营异常名录管理办法》's grounds that qifu keeps)."""

        NOT_FILED = "not_filed", "未按规定期限公示年度报告"  # for a report year
        UNREACHABLE = "unreachable", "通过登记的住所或者经营场所无法联系"  # found by a visit or a spot check
        FALSE_INFO = "false_info", "公示企业信息隐瞒真实情况、弄虚作假"  # found by a spot check
        # a spot check ordered it to correct what it published within ten days, and it did not
        UNCORRECTED = "uncorrected", "未在责令的期限内公示有关企业信息"

    class Status(models.TextChoices):
        LISTED = "listed", "列入中"
        APPLIED = "applied", "已申请移出"
        REMOVED = "removed", "已移出"
        ANNULLED = "annulled", "已撤销（列入有误）"

    STANDING = (Status.LISTED, Status.APPLIED)  # still on the list
    # the bureau decides on an application within five working days of receiving it
    # (《企业经营异常名录管理暂行办法》 of 2014, art. 11; see docs/abnormal.md on the domain reference's 7 days)
    DECIDE_WITHIN_WORKDAYS = 5

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="listings")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所属镇街")
    ground = models.CharField("列入情形", max_length=12, choices=Ground.choices, default=Ground.NOT_FILED)
    # taken from the national system's list (`qifu import abnormal`): decided and served there
    imported = models.BooleanField("从国家企业信用信息公示系统导入", default=False)
    report_year = models.PositiveSmallIntegerField("报告年度", null=True, blank=True)  # not filed: the year
    kind = models.CharField("类型", max_length=6, choices=Kind.choices)
    reason = models.CharField("列入事由", max_length=100)
    number = models.CharField("决定书文号", max_length=40, unique=True)
    status = models.CharField("状态", max_length=8, choices=Status.choices, default=Status.LISTED)
    listed_on = models.DateField("列入日期")
    listed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name="决定人")
    applied_at = models.DateTimeField("申请移出时间", null=True, blank=True)
    applied_channel = models.CharField("申请渠道", max_length=8, blank=True)  # portal | staff
    # unreachable: the day a visit found nobody at the registered address, what was found, the
    # address then (a change of address registered since is a way off), and what the entity
    # said when it applied (how it can be reached now)
    found_on = models.DateField("查实日期", null=True, blank=True)
    found = models.CharField("核查情况", max_length=300, blank=True)
    address = models.CharField("列入时的登记住所", max_length=300, blank=True)
    applied_note = models.CharField("申请说明", max_length=300, blank=True)
    removed_on = models.DateField("移出日期", null=True, blank=True)
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="移出、撤销或不予移出的决定人")
    note = models.CharField("移出、撤销或不予移出的说明", max_length=300, blank=True)
    # the entity's objection to the listing (异议), an enterprise request in 年报与信用修复
    objection = models.ForeignKey("service_requests.ServiceRequest", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name="异议（企业诉求）")

    class Meta:
        verbose_name = verbose_name_plural = "经营异常名录"
        ordering = ["-listed_on", "number"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "report_year"], name="abnormal_one_per_year"),
            # at most one standing for an unreachable address (its report_year is empty)
            models.UniqueConstraint(fields=["entity"], name="abnormal_one_unreachable_standing",
                                    condition=Q(ground="unreachable", status__in=["listed", "applied"])),
            models.UniqueConstraint(fields=["entity"], name="abnormal_one_false_info_standing",
                                    condition=Q(ground="false_info", status__in=["listed", "applied"])),
            models.UniqueConstraint(fields=["entity"], name="abnormal_one_uncorrected_standing",
                                    condition=Q(ground="uncorrected", status__in=["listed", "applied"])),
        ]
        indexes = [models.Index(fields=["report_year", "status"]), models.Index(fields=["town", "status"])]

    @property
    def decided(self) -> str:
        """What was done to the entity, as its messages and its decision say it (被…, 将…):
        列入经营异常名录, or 标注为经营异常状态 for an individual business."""
        return "标注为经营异常状态" if self.kind == self.Kind.MARK else "列入经营异常名录"

    @property
    def undone(self) -> str:
        """Its way off, as the messages and the decision say it: 移出经营异常名录, or
        恢复正常记载状态 for an individual business."""
        return "恢复正常记载状态" if self.kind == self.Kind.MARK else "移出经营异常名录"

    @property
    def decided_day(self) -> dt.date:
        return self.listed_on

    @property
    def unreachable(self) -> bool:
        return self.ground == self.Ground.UNREACHABLE

    @property
    def false_info(self) -> bool:
        return self.ground == self.Ground.FALSE_INFO

    @property
    def uncorrected(self) -> bool:
        return self.ground == self.Ground.UNCORRECTED

    @property
    def on_finding(self) -> bool:
        """Listed on a fact staff found (an address found empty, a report found false, an order to
        correct it ignored), not for
        a report year: no year, off on the entity's statement once staff have checked it."""
        return self.ground != self.Ground.NOT_FILED

    @property
    def way_off(self) -> str:
        """What the entity does to come off, as its messages say it after 请尽快."""
        if self.unreachable:
            return "办理住所变更登记或在登记住所恢复联系"
        if self.false_info:
            return "更正公示的信息"
        if self.uncorrected:
            return "按责令更正公示的信息"
        return "补报"

    @property
    def moved(self) -> bool:
        """Unreachable, and the entity's registered address is no longer the one it was listed at
        (a change of address registered since: a way off, for staff to check)."""
        return self.unreachable and bool(self.address) and (self.entity.address or "") != self.address

    @property
    def because(self) -> str:
        """Why, as its messages say it after 因: 未报送2025年度年报, 通过登记的住所或者经营场所无法联系."""
        return self.get_ground_display() if self.on_finding else f"未报送{self.report_year}年度年报"

    @property
    def about(self) -> str:
        """Which listing, in a line or a title: 2025 年度, 无法联系 or 信息不实."""
        return ABOUT.get(self.ground) or f"{self.report_year} 年度"

    @property
    def later_decisions(self) -> str:
        """Its later decisions in one line, for a workbook's cell (prefetch ``rulings``):
        不予移出 异不移〔2026〕00001号（2026-08-03）；移出 异移〔2026〕00002号（2026-08-10）"""
        return "；".join(f"{r.get_kind_display()} {r.number}（{r.decided_on:%Y-%m-%d}）" for r in self.rulings.all())

    @property
    def standing(self) -> bool:
        return self.status in self.STANDING

    @property
    def answer_by(self) -> dt.date | None:
        """While it is applied for: the last day to decide, the fifth working day after the
        application (county time)."""
        if self.status != self.Status.APPLIED or self.applied_at is None:
            return None
        return workdays.nth_after(timezone.localdate(self.applied_at), self.DECIDE_WITHIN_WORKDAYS)

    def __str__(self) -> str:
        return f"{self.number}：{self.entity_id}（{self.about}）"


class Ruling(PaperService):
    """A later written decision on a listing, with its own number: the removal (移出, or the
    mark cleared), a refusal to remove (不予移出, saying why; the entity may apply again) or the
    annulment of a listing found wrong (撤销, saying what was found). Each is printed as a
    decision (``abnormal.documents``); the removal is what a firm shows a bank or a tender that
    it is off the list. A removal made in the national system and imported has none here."""

    class Kind(models.TextChoices):
        REMOVE = "remove", "移出"
        REFUSE = "refuse", "不予移出"
        ANNUL = "annul", "撤销"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="rulings")
    kind = models.CharField("决定类型", max_length=6, choices=Kind.choices)
    number = models.CharField("决定书文号", max_length=40, unique=True)
    decided_on = models.DateField("决定日期")
    decided_at = models.DateTimeField("决定时间")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="决定人")
    # the application it answers (None: of the bureau's own motion)
    applied_at = models.DateTimeField("所答复的移出申请时间", null=True, blank=True)
    reason = models.CharField("理由或核实的情况", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "移出、不予移出和撤销决定"
        ordering = ["decided_at", "id"]

    def __str__(self) -> str:
        return f"{self.number}：{self.get_kind_display()}（{self.listing.number}）"

    @property
    def decided_day(self) -> dt.date:
        return self.decided_on

    @property
    def title(self) -> str:
        """Its written decision's title, by its kind and the listing's: 移出经营异常名录决定书,
        不予恢复正常记载状态决定书, 撤销列入经营异常名录决定书…"""
        x = self.listing
        if self.kind == self.Kind.REMOVE:
            return f"{x.undone}决定书"
        if self.kind == self.Kind.REFUSE:
            return f"不予{x.undone}决定书"
        return f"撤销{x.get_kind_display()}决定书"


class SetAside(models.Model):
    """A visit's finding of an unreachable address that staff checked and decided not to list
    (核实后不予列入): the entity was reached after all, it has moved and registered the new address,
    or the visit went to the wrong place. It answers the finding of ``found_on`` and those before;
    a later visit that finds the address empty again is a new finding."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="+")
    found_on = models.DateField("所核实的查实日期")
    reason = models.CharField("核实情况", max_length=300)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="决定人")
    decided_at = models.DateTimeField("决定时间")

    class Meta:
        verbose_name = verbose_name_plural = "核实后不予列入"
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.entity_id}（{self.found_on:%Y-%m-%d}）：{self.reason}"
