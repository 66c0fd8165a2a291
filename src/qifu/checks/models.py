from django.db import models

from qifu.registry.models import Entity

SEVERITIES = [("block", "阻断"), ("high", "高"), ("medium", "中"), ("low", "低"), ("info", "提示")]


class CheckRun(models.Model):
    """One run of the rule catalogue over the reports of one year."""

    report_year = models.PositiveSmallIntegerField("报告年度")
    engine = models.CharField("引擎", max_length=10)
    ruleset_version = models.CharField("规则集版本", max_length=20)
    started_at = models.DateTimeField("开始时间")
    finished_at = models.DateTimeField("完成时间", null=True)
    reports_checked = models.PositiveIntegerField("校验年报数", default=0)
    findings = models.PositiveIntegerField("问题数", default=0)
    new_findings = models.PositiveIntegerField("新增问题", default=0)
    resolved = models.PositiveIntegerField("已解决", default=0)
    rule_counts = models.JSONField("各规则问题数", default=dict)
    # County statistics the single-report engine needs (peer and industry medians), so a
    # self-check compares a report with the same peers the batch did.
    aggregates = models.JSONField("县域统计", default=dict, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "校验批次"
        ordering = ["-started_at"]


class Finding(models.Model):
    """A problem a rule found in an entity's report for one year, tracked until it is resolved.

    One row per (entity, year, rule variant): a later run that finds it again updates the
    message and ``last_run``; a run that no longer finds it marks it resolved, and records
    whether a corrected revision did it.
    """

    class Status(models.TextChoices):
        OPEN = "open", "待处理"
        RESOLVED = "resolved", "已解决"
        CONFIRMED = "confirmed", "企业说明无误"

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="findings", db_column="uscc")
    report_year = models.PositiveSmallIntegerField("报告年度")
    rule_id = models.CharField("规则", max_length=8)
    rule_key = models.CharField("规则变体", max_length=60)
    severity = models.CharField("严重程度", max_length=8, choices=SEVERITIES)
    fields = models.CharField("字段", max_length=500)
    message = models.TextField("说明")
    suggestion = models.CharField("建议值", max_length=60, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.OPEN)
    revision = models.PositiveSmallIntegerField("发现时的年报版本")
    first_run = models.ForeignKey(CheckRun, on_delete=models.PROTECT, related_name="+")
    last_run = models.ForeignKey(CheckRun, on_delete=models.PROTECT, related_name="+")
    resolved_run = models.ForeignKey(CheckRun, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    resolved_revision = models.PositiveSmallIntegerField("解决时的年报版本", null=True, blank=True)
    resolved_by_correction = models.BooleanField("因更正而解决", null=True)

    class Meta:
        verbose_name = verbose_name_plural = "校验问题"
        constraints = [models.UniqueConstraint(fields=["entity", "report_year", "rule_key"], name="finding_unique")]
        indexes = [models.Index(fields=["report_year", "status", "severity"]), models.Index(fields=["rule_id"])]
