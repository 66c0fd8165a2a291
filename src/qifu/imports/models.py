from django.db import models


class ImportRun(models.Model):
    """One successful import of one file. Refused files leave no trace in the database;
    their error report is written to a file instead."""

    kind = models.CharField("类型", max_length=20)
    file_name = models.CharField("文件", max_length=500)
    sha256 = models.CharField("文件摘要", max_length=64)
    encoding = models.CharField("编码", max_length=20)
    rows = models.PositiveIntegerField("行数")
    inserted = models.PositiveIntegerField("新增")
    updated = models.PositiveIntegerField("更新或更正")
    unchanged = models.PositiveIntegerField("未变化")
    started_at = models.DateTimeField("开始时间")
    finished_at = models.DateTimeField("完成时间")

    class Meta:
        verbose_name = verbose_name_plural = "导入记录"
        ordering = ["-started_at"]
