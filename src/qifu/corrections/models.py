"""The correction loop: a notice bundles an entity's findings; the entity corrects its report
(a new revision that clears the finding) or explains why a value is right."""

from django.conf import settings
from django.db import models

from qifu.checks.models import Finding
from qifu.engine.contract import CHANNELS
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage


class CorrectionNotice(models.Model):
    """One notice per entity and day, listing every finding it must look at."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="correction_notices", db_column="uscc")
    report_year = models.PositiveSmallIntegerField("报告年度")
    issued_on = models.DateField("通知日期")
    deadline = models.DateField("更正截止日期")
    channel = models.CharField("渠道", max_length=10, choices=CHANNELS)
    message = models.OneToOneField(OutboxMessage, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="correction_notice")
    findings = models.ManyToManyField(Finding, related_name="notices", verbose_name="问题")

    class Meta:
        verbose_name = verbose_name_plural = "更正通知"
        constraints = [models.UniqueConstraint(fields=["entity", "report_year", "issued_on"], name="notice_per_day")]
        indexes = [models.Index(fields=["report_year", "issued_on"])]


class Explanation(models.Model):
    """The enterprise says a flagged value is right, and why. Accepted at once (the finding is
    no longer counted as open); staff review it and may reject it, which reopens the finding."""

    class Status(models.TextChoices):
        PENDING = "pending", "待复核"
        ACCEPTED = "accepted", "复核通过"
        REJECTED = "rejected", "复核不通过"

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="explanations")
    reason = models.TextField("说明", max_length=1000)
    submitted_at = models.DateTimeField("提交时间", auto_now_add=True)
    status = models.CharField("复核状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    reviewed_at = models.DateTimeField("复核时间", null=True, blank=True)
    review_note = models.CharField("复核意见", max_length=500, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "企业说明"
        ordering = ["-submitted_at"]
