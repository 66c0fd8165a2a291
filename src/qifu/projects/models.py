"""Phased acceptance of construction projects (分期验收、一次备案): a project of an owner firm,
its phases (each a group of unit works, 单位工程) with their checklists from the project type's
template, every step on the record (who, when, what, which document), and the one filing."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from qifu.engine.projects.workflow import LABELS, PROJECT_LABELS, State
from qifu.registry.models import Entity, Township


class Project(models.Model):
    code = models.CharField("项目代码", max_length=40, unique=True, help_text="投资项目代码，与省工程建设项目审批系统对应")
    name = models.CharField("项目名称", max_length=200)
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, db_column="uscc", related_name="projects",
                               verbose_name="建设单位")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所在镇街")
    site = models.CharField("建设地点", max_length=300)
    project_type = models.CharField("项目类型", max_length=20)
    permits = models.CharField("许可证号", max_length=300, blank=True, help_text="规划许可、施工许可证号")
    status = models.CharField("状态", max_length=10, choices=list(PROJECT_LABELS.items()), default="building")
    registered_at = models.DateTimeField("登记时间")
    filed_at = models.DateTimeField("备案时间", null=True, blank=True)
    filing_no = models.CharField("备案编号", max_length=40, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "建设项目"
        ordering = ["-registered_at"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Phase(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="phases")
    seq = models.PositiveSmallIntegerField("期次")
    name = models.CharField("名称", max_length=100)
    unit_works = models.TextField("单位工程", help_text="本期包含的单位工程，每行一个")
    state = models.CharField("状态", max_length=12, choices=[(s.value, LABELS[s]) for s in State], default="planned")
    ready_at = models.DateTimeField("具备验收条件", null=True, blank=True)
    notified_at = models.DateTimeField("告知质监站", null=True, blank=True)
    inspection_on = models.DateField("联合验收日期", null=True, blank=True)
    accepted_at = models.DateTimeField("验收通过", null=True, blank=True)
    in_use_at = models.DateTimeField("投入使用", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "验收分期"
        ordering = ["project", "seq"]
        constraints = [models.UniqueConstraint(fields=["project", "seq"], name="phase_seq_unique")]

    def __str__(self) -> str:
        return f"第{self.seq}期 {self.name}"


class ChecklistItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待提交"
        SUBMITTED = "submitted", "已提交"
        PASSED = "passed", "通过"
        FAILED = "failed", "未通过"
        # 承诺容缺: a document missing at acceptance, let pass against the owner's written promise
        # to hand it in by ``promised_until``; the one filing waits for it
        PROMISED = "promised", "承诺容缺"

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="items")
    code = models.CharField(max_length=40)
    name = models.CharField("事项", max_length=200)
    kind = models.CharField("类型", max_length=12, choices=[("document", "资料"), ("inspection", "专项验收")])
    authority = models.CharField("出具或验收单位", max_length=100, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    document_name = models.CharField("文件", max_length=200, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    note = models.CharField("说明", max_length=500, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    promised_until = models.DateField("承诺补交期限", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "验收事项"
        ordering = ["phase", "id"]
        constraints = [models.UniqueConstraint(fields=["phase", "code"], name="item_code_unique")]


class Step(models.Model):
    """Every step on the record: who did what, when, with which document."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="steps")
    phase = models.ForeignKey(Phase, null=True, blank=True, on_delete=models.CASCADE, related_name="steps")
    action = models.CharField("事项", max_length=40)
    actor = models.CharField("办理人", max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField("时间")
    note = models.CharField("说明", max_length=500, blank=True)
    document_name = models.CharField("文件", max_length=200, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    request = models.ForeignKey("service_requests.ServiceRequest", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")

    class Meta:
        verbose_name = verbose_name_plural = "办理记录"
        ordering = ["at", "id"]


class Defect(models.Model):
    """One problem a failed special inspection found (整改问题), one per line of its result: the
    owner reports it fixed with a photo or a document, and the re-inspection closes it. The
    phase is not inspected again while one is still to fix."""

    class Status(models.TextChoices):
        OPEN = "open", "待整改"
        FIXED = "fixed", "已整改，待复验"
        # the re-inspection passed the item, or failed it again with its problems listed anew
        CLOSED = "closed", "已销项"

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="defects")
    item = models.ForeignKey(ChecklistItem, on_delete=models.CASCADE, related_name="defects", verbose_name="专项验收")
    text = models.CharField("问题", max_length=300)
    status = models.CharField("状态", max_length=8, choices=Status.choices, default=Status.OPEN)
    raised_at = models.DateTimeField("提出时间")
    fixed_at = models.DateTimeField("整改时间", null=True, blank=True)
    fixed_note = models.CharField("整改说明", max_length=500, blank=True)
    document_name = models.CharField("整改材料", max_length=200, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    closed_at = models.DateTimeField("销项时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "整改问题"
        ordering = ["phase", "id"]
