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


class KnowledgeEntry(models.Model):
    """An entry added by staff (a good answer to an enterprise request), used by the assistant
    once an administrator approves it, beside the shipped knowledge base."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "待审核"
        APPROVED = "approved", "已启用"
        REJECTED = "rejected", "不采用"

    question = models.CharField("问题", max_length=200)
    answer = models.TextField("答复", max_length=2000)
    source = models.CharField("来源", max_length=100, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "助手知识条目（工作人员添加）"
        ordering = ["-created_at"]
