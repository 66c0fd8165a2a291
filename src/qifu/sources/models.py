"""Data from other bureaus, used by cross-source checks and reminder targeting."""

from django.db import models

from qifu.registry.models import MONEY, Entity


class TaxRecord(models.Model):
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="tax_records", db_column="uscc")
    year = models.PositiveSmallIntegerField("年度")
    declared_sales = models.DecimalField("申报销售收入", **MONEY)
    tax_paid = models.DecimalField("实缴税额", **MONEY)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "税务数据"
        indexes = [models.Index(fields=["imported_at"], name="tax_imported")]  # analytics.stamp
        constraints = [models.UniqueConstraint(fields=["entity", "year"], name="tax_unique")]


class SocialRecord(models.Model):
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="social_records", db_column="uscc")
    year = models.PositiveSmallIntegerField("年度")
    insured_count = models.IntegerField("年末参保人数", null=True, blank=True)  # stored as received
    arrears = models.DecimalField("欠缴金额", **MONEY)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "社保数据"
        indexes = [models.Index(fields=["imported_at"], name="social_imported")]  # analytics.stamp
        constraints = [models.UniqueConstraint(fields=["entity", "year"], name="social_unique")]
