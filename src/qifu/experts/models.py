"""Expert partners (科创伙伴): experts from universities and institutes, the technical needs of
firms (技术需求), the experts proposed for a need with the words that matched and staff's
confirmation, the visits made (走访), and the cooperation projects agreed with their
milestones and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from qifu.registry.models import Entity, Township
from qifu.service_requests.models import Satisfaction


class Expert(models.Model):
    class Availability(models.TextChoices):
        AVAILABLE = "available", "可对接"
        LIMITED = "limited", "时间有限"
        UNAVAILABLE = "unavailable", "暂不对接"

    code = models.CharField("专家编号", max_length=40, unique=True)
    name = models.CharField("姓名", max_length=50)
    institution = models.CharField("单位", max_length=200)
    title = models.CharField("职称", max_length=50, blank=True)
    fields = models.CharField("领域", max_length=300, help_text="产业链与学科，用顿号或空格分隔")
    skills = models.TextField("专长", blank=True)
    projects = models.TextField("代表项目", blank=True)
    availability = models.CharField("可对接情况", max_length=12, choices=Availability.choices, default="available")
    phone = models.CharField("联系电话", max_length=50, blank=True)
    email = models.CharField("电子邮箱", max_length=200, blank=True)
    consent = models.BooleanField("同意公开", default=False, help_text="同意后企业端可看到姓名、单位和领域")
    updated_at = models.DateTimeField("更新时间")
    # the expert's own sign-in (`qifu expert-account`): their desk of needs they were paired with
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="expert", verbose_name="登录账号")
    # whether the expert wishes to be told each morning of new needs in their line, and up to
    # when they have been (``notices.new_needs``)
    news = models.BooleanField("接收新需求通知", default=True)
    needs_told_at = models.DateTimeField("新需求已通知至", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "专家"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.institution}）"


class Achievement(models.Model):
    """A result of a university or institute offered to firms (科技成果): what it is, how ripe,
    how it may be taken up, and the expert to talk to; matched to firms' needs (the reverse of
    a need's experts). Only a public one is shown to firms."""

    class Maturity(models.TextChoices):
        LAB = "lab", "实验室阶段"
        PILOT = "pilot", "小试中试"
        READY = "ready", "可产业化"

    class Transfer(models.TextChoices):
        TRANSFER = "transfer", "转让"
        LICENSE = "license", "许可使用"
        JOINT = "joint", "合作开发"
        EQUITY = "equity", "作价入股"

    code = models.CharField("成果编号", max_length=40, unique=True)
    title = models.CharField("成果名称", max_length=200)
    summary = models.TextField("成果简介")
    fields = models.CharField("领域", max_length=300)
    holder = models.CharField("成果持有单位", max_length=200)
    expert = models.ForeignKey(Expert, null=True, blank=True, on_delete=models.SET_NULL, related_name="achievements",
                               verbose_name="联系专家")
    maturity = models.CharField("成熟度", max_length=8, choices=Maturity.choices)
    transfer = models.CharField("转化方式", max_length=10, choices=Transfer.choices)
    price = models.DecimalField("参考价格（万元）", max_digits=12, decimal_places=2, null=True, blank=True)
    public = models.BooleanField("同意公开", default=True)
    updated_at = models.DateTimeField("更新时间")

    class Meta:
        verbose_name = verbose_name_plural = "科技成果"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.title}（{self.holder}）"


class Need(models.Model):
    """A firm's technical need, entered by staff, by the firm in the portal, or taken from a
    request of the technology category."""

    class Status(models.TextChoices):
        OPEN = "open", "待对接"
        PAIRED = "paired", "已对接"
        COOPERATING = "cooperating", "合作中"
        CLOSED = "closed", "已办结"

    class Source(models.TextChoices):
        STAFF = "staff", "工作人员录入"
        PORTAL = "portal", "企业提出"
        REQUEST = "request", "企业诉求转入"

    number = models.CharField("需求编号", max_length=20, unique=True)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="tech_needs")
    town = models.ForeignKey(Township, on_delete=models.PROTECT)
    title = models.CharField("需求名称", max_length=100)
    text = models.TextField("需求描述")
    budget = models.DecimalField("预算（万元）", max_digits=12, decimal_places=2, null=True, blank=True)
    urgent = models.BooleanField("紧急", default=False)
    confidential = models.BooleanField("保密", default=False, help_text="保密需求只有本镇街和局管理员看得到描述")
    source = models.CharField("来源", max_length=8, choices=Source.choices)
    request = models.OneToOneField("service_requests.ServiceRequest", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="tech_need")
    # the achievement of the results library the firm asked about, if the need came from one
    achievement = models.ForeignKey(Achievement, null=True, blank=True, on_delete=models.SET_NULL, related_name="needs",
                                    verbose_name="了解的科技成果")
    status = models.CharField("状态", max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField("提出时间")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = verbose_name_plural = "技术需求"
        ordering = ["-created_at"]


class Pairing(models.Model):
    """An expert proposed for a need by the matching, and what staff made of it."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "推荐"
        CONFIRMED = "confirmed", "已确认对接"
        DECLINED = "declined", "不合适"

    class Answer(models.TextChoices):
        ACCEPTED = "accepted", "愿意对接"
        DECLINED = "declined", "婉拒"

    need = models.ForeignKey(Need, on_delete=models.CASCADE, related_name="pairings")
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="pairings")
    rank = models.PositiveSmallIntegerField("推荐名次")
    score = models.FloatField("相关度")
    words = models.JSONField("匹配词", default=list)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PROPOSED)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    # the expert's answer to a confirmed pairing, on their desk
    answer = models.CharField("专家答复", max_length=10, choices=Answer.choices, blank=True)
    answer_note = models.CharField("答复说明", max_length=500, blank=True)
    answered_at = models.DateTimeField("答复时间", null=True, blank=True)
    # the expert offered to take the need from their desk (专家自荐), with a word to the broker
    volunteered_at = models.DateTimeField("自荐时间", null=True, blank=True)
    volunteer_note = models.CharField("自荐说明", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "专家推荐"
        ordering = ["need", "rank"]
        constraints = [models.UniqueConstraint(fields=["need", "expert"], name="pairing_once")]


class ConflictQuerySet(models.QuerySet):
    def standing(self):
        """The ties that apply: declared and not withdrawn."""
        return self.filter(withdrawn_at__isnull=True)


class Conflict(models.Model):
    """An expert's declared tie to a firm (利益回避: a past client, a relative's shares, the
    expert's institution's contract): the matching never proposes the expert for that firm's
    needs, and staff cannot confirm them for one."""

    expert = models.ForeignKey(Expert, on_delete=models.CASCADE, related_name="conflicts")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="expert_conflicts")
    reason = models.CharField("关系说明", max_length=200)
    declared_at = models.DateTimeField("申报时间")
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name="申报人")
    # withdrawn (declared by mistake, or the tie has ended): kept as a record, no longer applied
    withdrawn_at = models.DateTimeField("撤回时间", null=True, blank=True)
    withdrawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name="撤回人")

    objects = ConflictQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "利益回避"
        ordering = ["-declared_at"]
        constraints = [models.UniqueConstraint(fields=["expert", "entity"], condition=models.Q(withdrawn_at__isnull=True),
                                               name="conflict_once")]

    @property
    def by_expert(self) -> bool:
        """Declared by the expert on their desk (theirs to withdraw), not recorded by staff."""
        return self.expert.user_id is not None and self.declared_by_id == self.expert.user_id


class Visit(models.Model):
    """A visit to a firm (走访), with or without an expert."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="expert_visits")
    town = models.ForeignKey(Township, on_delete=models.PROTECT)
    need = models.ForeignKey(Need, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits")
    expert = models.ForeignKey(Expert, null=True, blank=True, on_delete=models.PROTECT, related_name="visits")
    visited_on = models.DateField("走访日期")
    notes = models.TextField("走访情况")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = verbose_name_plural = "走访记录"
        ordering = ["-visited_on"]


class Cooperation(models.Model):
    class Status(models.TextChoices):
        ONGOING = "ongoing", "进行中"
        COMPLETED = "completed", "已完成"
        STOPPED = "stopped", "已终止"

    need = models.OneToOneField(Need, on_delete=models.PROTECT, related_name="cooperation")
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="cooperations")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="cooperations")
    town = models.ForeignKey(Township, on_delete=models.PROTECT)
    title = models.CharField("合作项目", max_length=200)
    agreed_on = models.DateField("签约日期")
    amount = models.DecimalField("合同金额（万元）", max_digits=12, decimal_places=2, default=0)
    milestones = models.JSONField("节点", default=list)  # [{"name": ..., "due": "2026-12-31", "done_on": null}]
    outcome = models.TextField("成果", blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.ONGOING)
    # the firm's rating once the project has ended (the same three grades as a request's)
    rating = models.CharField("企业评价", max_length=12, choices=Satisfaction.choices, blank=True)
    rating_comment = models.CharField("评价意见", max_length=500, blank=True)
    rated_at = models.DateTimeField("评价时间", null=True, blank=True)
    # the expert's side once it has ended: how the firm worked with them
    expert_rating = models.CharField("专家评价", max_length=12, choices=Satisfaction.choices, blank=True)
    expert_comment = models.CharField("专家意见", max_length=500, blank=True)
    expert_rated_at = models.DateTimeField("专家评价时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "合作项目"
        ordering = ["-agreed_on"]
