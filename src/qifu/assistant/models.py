from django.db import models

from qifu.registry.models import Entity


class Handoff(models.Model):
    """A question the assistant passed to a person: the staff queue (the enterprise-request
    module will take these over)."""

    class Status(models.TextChoices):
        WAITING = "waiting", "待处理"
        ANSWERED = "answered", "已答复"
        CLOSED = "closed", "已关闭"

    question = models.TextField("问题")
    topic = models.CharField("主题", max_length=40, blank=True)
    best_entry = models.CharField("最接近的条目", max_length=60, blank=True)
    score = models.FloatField("置信度")
    channel = models.CharField("渠道", max_length=20, default="web")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.SET_NULL, db_column="uscc")
    contact = models.CharField("联系方式", max_length=100, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.WAITING)
    created_at = models.DateTimeField("提问时间", auto_now_add=True)
    answer = models.TextField("工作人员答复", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "转人工问题"
        ordering = ["-created_at"]
