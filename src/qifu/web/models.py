"""An export made in the background (后台导出): a list too long to wait for in the browser (the
whole county's entities as a workbook takes half a minute) is asked for here, made by
`qifu worker` (``web.exports``), and downloaded by whoever asked for it."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Export(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "排队中"
        RUNNING = "running", "生成中"
        DONE = "done", "可下载"
        FAILED = "failed", "失败"
        EXPIRED = "expired", "已过期"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exports",
                             verbose_name="申请人")
    label = models.CharField("名单", max_length=200)
    path = models.CharField("导出地址", max_length=2000)  # the export's own URL, with the list's filters
    ip = models.GenericIPAddressField("申请地址", null=True, blank=True)
    expected_rows = models.PositiveIntegerField("预计行数", default=0)
    rows_done = models.PositiveIntegerField("已写行数", default=0)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField("尝试次数", default=0)
    filename = models.CharField("文件名", max_length=200, blank=True)
    content_type = models.CharField("文件类型", max_length=100, blank=True)
    size = models.PositiveBigIntegerField("文件大小", default=0)
    error = models.TextField("失败原因", blank=True)
    created_at = models.DateTimeField("申请时间", auto_now_add=True)
    started_at = models.DateTimeField("开始时间", null=True, blank=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "后台导出"
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["user", "created_at"])]

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(99, round(100 * self.rows_done / (self.expected_rows + 1))) if self.expected_rows else 0
