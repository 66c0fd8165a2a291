"""A spot check of one report year's published annual reports (年报抽查) and the entities drawn
for it, each with its inspectors and, once checked, its result."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from qifu.registry.models import Entity, Township


class Inspection(models.Model):
    """One draw (抽查任务): which report year, at random or targeted by an expression over the
    entity profile (the policies' language: ``open_findings > 0``), at what rate, from how many
    entities, with which seed (published: anyone can draw the same entities again from the same
    population, docs/inspections.md), by when the checks are to be finished, and, for a written
    check, by when the entities drawn are to send their documents."""

    class Kind(models.TextChoices):
        RANDOM = "random", "双随机抽查"
        TARGETED = "targeted", "定向抽查"

    number = models.CharField("任务编号", max_length=40, unique=True)
    year = models.PositiveSmallIntegerField("报告年度")
    kind = models.CharField("抽查方式", max_length=8, choices=Kind.choices)
    title = models.CharField("任务名称", max_length=100)
    criteria = models.CharField("定向条件", max_length=1000, blank=True)
    rate = models.DecimalField("抽查比例(%)", max_digits=5, decimal_places=2)
    town = models.ForeignKey(Township, null=True, blank=True, on_delete=models.PROTECT, verbose_name="范围（空为全市）")
    seed = models.CharField("随机种子", max_length=64)
    population = models.PositiveIntegerField("抽查范围内主体数")
    drawn_at = models.DateTimeField("抽取时间")
    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", verbose_name="抽取人")
    finish_by = models.DateField("检查完成期限")
    # a written check (书面检查): each entity drawn is told, by text or email, to send the documents
    # behind its report by this day (None: not told beforehand, the inspectors come); ``told_at``:
    # when the last of those notices was stored in the outbox (``actions.tell_drawn``)
    documents_by = models.DateField("材料提交期限", null=True, blank=True)
    told_at = models.DateTimeField("告知完成时间", null=True, blank=True)
    # when ``documents_by`` was last put later (``Extension``; None: never): those told before it
    # and still owing documents are told the new day (``actions.tell_drawn``)
    extended_at = models.DateTimeField("材料提交期限延长时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "年报抽查任务"
        ordering = ["-drawn_at", "-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class Sample(models.Model):
    """One entity drawn (抽查对象): its inspectors (two, drawn at random from the staff who may
    check it), and once checked, the result, what was found and the day; a report found false
    or an address found empty leads to a listing, kept with it."""

    class Result(models.TextChoices):
        OK = "ok", "未发现问题"
        CORRECTED = "corrected", "发现问题已责令改正"
        FALSE_INFO = "false_info", "公示信息隐瞒真实情况、弄虚作假"
        UNREACHABLE = "unreachable", "通过登记的住所或者经营场所无法联系"
        REFUSED = "refused", "不予配合情节严重"

    LISTED = (Result.FALSE_INFO, Result.UNREACHABLE)  # each lists the entity (docs/inspections.md)

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="samples")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="samples")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所属镇街")
    inspectors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", verbose_name="检查人员")
    result = models.CharField("检查结果", max_length=12, choices=Result.choices, blank=True)
    found = models.CharField("检查情况", max_length=500, blank=True)
    checked_on = models.DateField("检查日期", null=True, blank=True)
    recorded_at = models.DateTimeField("录入时间", null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name="录入人")
    listing = models.ForeignKey("abnormal.Listing", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", verbose_name="据此列入经营异常名录")
    # an order to correct (``Result.CORRECTED``): by when, what the entity said it corrected, and
    # the inspectors' follow-up (复查): corrected on a day, or not, which lists it once the day has passed
    correct_by = models.DateField("改正期限", null=True, blank=True)
    statement = models.CharField("企业说明的更正情况", max_length=300, blank=True)
    stated_at = models.DateTimeField("企业说明时间", null=True, blank=True)
    corrected_on = models.DateField("复查确认已改正日期", null=True, blank=True)
    follow_up = models.CharField("复查情况", max_length=300, blank=True)
    followed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name="复查人")
    # a written check's notice (``actions.tell_drawn``): when it was stored for sending; None for an
    # entity no text or email reaches (its inspectors tell it), or not told yet
    notified_at = models.DateTimeField("书面检查告知时间", null=True, blank=True)
    # a written check's day put later for this entity alone (``actions.do_extend_sample_documents``:
    # it asked for time); the check's own day counts where that is later (``documents_due``)
    documents_by = models.DateField("本户材料提交期限（单独延长）", null=True, blank=True)
    # the firm's own request for more time (申请延长, in its portal: ``actions.do_ask_more_time``): to
    # which day and why; answered by its inspectors, granted (``do_extend_sample_documents``) or
    # not (``do_refuse_more_time``), with the answer it is told. Waiting while asked and unanswered.
    more_time_to = models.DateField("企业申请延长至", null=True, blank=True)
    more_time_why = models.CharField("企业申请延长的理由", max_length=300, blank=True)
    more_time_asked_at = models.DateTimeField("企业申请延长时间", null=True, blank=True)
    more_time_answer = models.CharField("对延长申请的答复", max_length=300, blank=True)
    more_time_answered_at = models.DateTimeField("答复时间", null=True, blank=True)
    more_time_answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                              related_name="+", verbose_name="答复人")

    class Meta:
        verbose_name = verbose_name_plural = "抽查对象"
        ordering = ["inspection", "entity"]
        constraints = [models.UniqueConstraint(fields=["inspection", "entity"], name="inspections_one_sample")]
        indexes = [models.Index(fields=["town", "result"])]

    def __str__(self) -> str:
        return f"{self.inspection.number}：{self.entity_id}"

    @property
    def checked(self) -> bool:
        return bool(self.result)

    def correction(self, today: dt.date) -> str:
        """Where an order to correct stands on ``today`` (``Correction``; empty for other results)."""
        if self.result != self.Result.CORRECTED or self.correct_by is None:
            return ""
        if self.corrected_on:
            return Correction.DONE
        if self.listing_id:
            return Correction.LISTED
        if today > self.correct_by:
            return Correction.OVERDUE
        return Correction.STATED if self.stated_at else Correction.WAITING

    def takes_evidence(self, today: dt.date) -> bool:
        """Whether documents may still be sent for it (``Evidence``): while it waits for its
        check, or an order to correct waits for its follow-up."""
        return not self.result or self.correction(today) in (Correction.WAITING, Correction.STATED, Correction.OVERDUE)

    def correction_label(self, today: dt.date) -> str:
        state = self.correction(today)
        return Correction(state).label if state else ""

    @property
    def documents_due(self) -> dt.date | None:
        """The day this entity's documents are due: the later of the check's day and its own
        (``documents_by``: given more time alone); None for an on-site check."""
        day = self.inspection.documents_by
        if day is None or self.documents_by is None:
            return day
        return max(day, self.documents_by)

    @property
    def more_time_waiting(self) -> bool:
        """Whether the firm asked for more time and its inspectors have not answered yet."""
        return bool(self.more_time_asked_at) and self.more_time_answered_at is None and not self.result

    @property
    def documents_extended(self) -> bool:
        """Whether the day this entity was first told has been put later (for it alone or for all)."""
        x = self.inspection
        return bool(x.extended_at) or (self.documents_by is not None and x.documents_by is not None
                                       and self.documents_by > x.documents_by)


class Extension(models.Model):
    """A written check's day put later (延长材料提交期限), with the reason: for every entity drawn,
    by an administrator (a holiday, a system down, many firms asking for time), or for one
    (``sample``), by its inspectors or an administrator (it asked for time): the day it was and
    the day it is."""

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="extensions")
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.CASCADE, related_name="extensions",
                               verbose_name="单独延长的抽查对象（空为全部）")
    from_day = models.DateField("原材料提交期限")
    to_day = models.DateField("延长至")
    reason = models.CharField("延长理由", max_length=200)
    at = models.DateTimeField("延长时间")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", verbose_name="延长人")

    class Meta:
        verbose_name = verbose_name_plural = "材料提交期限延长"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.inspection.number}：{self.from_day} → {self.to_day}"


class Correction(models.TextChoices):
    """Where a spot check's order to correct stands (``Sample.correction``)."""

    WAITING = "waiting", "改正期限内"
    STATED = "stated", "企业已说明更正，待复查"
    OVERDUE = "overdue", "逾期未确认改正，待复查"
    DONE = "done", "复查已改正"
    LISTED = "listed", "逾期未改正，已列入经营异常名录"


class Evidence(models.Model):
    """A document sent for a spot check (依据材料): the evidence behind what the report published
    (payroll, accounts, tax returns) before the inspectors come, or of a correction ordered. An
    image or a PDF kept with the attachments under its SHA-256 (``service_requests.attachments``);
    sent by the firm in its portal, or by staff for it."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="evidence")
    name = models.CharField("文件名", max_length=200)
    content_type = models.CharField("类型", max_length=40)
    size = models.PositiveIntegerField("大小（字节）")
    sha256 = models.CharField(max_length=64)
    note = models.CharField("说明", max_length=200, blank=True)
    sent_at = models.DateTimeField("上传时间")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", verbose_name="代为上传的工作人员")  # None: the firm, in its portal

    class Meta:
        verbose_name = verbose_name_plural = "抽查依据材料"
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"{self.sample}：{self.name}"
