"""Land-efficiency evaluation (亩均论英雄): parcels, each year's indicators (corrections kept as
revisions), methods as data with a version, evaluations and their results, the firms'
confirmations and objections, and the remediation of low-efficiency land."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from qifu.registry.models import MONEY, Entity, Township

DECIMAL = MONEY


class Parcel(models.Model):
    """A firm's share of an industrial parcel (宗地), owned or rented (contract §1.8)."""

    parcel_id = models.CharField("宗地编号", max_length=60)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="parcels")
    role = models.CharField("权属", max_length=8, choices=[("owner", "自有"), ("tenant", "租用")])
    area_mu = models.DecimalField("用地面积(亩)", **{**DECIMAL, "null": False, "blank": False})
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所属镇街")
    land_use = models.CharField("土地用途", max_length=50, blank=True, null=True)
    floor_area_ratio = models.DecimalField("容积率", **DECIMAL)
    idle = models.BooleanField("是否闲置", null=True)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "工业用地宗地"
        constraints = [models.UniqueConstraint(fields=["parcel_id", "entity"], name="parcel_unique")]


class IndicatorRecord(models.Model):
    """One firm's evaluation data of one year (contract §1.9). A later import of the same year
    is a correction: a new revision, the old one kept."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="land_indicators")
    year = models.PositiveSmallIntegerField("年度")
    revision = models.PositiveSmallIntegerField("版本", default=1)
    is_current = models.BooleanField("当前版本", default=True)
    above_threshold = models.BooleanField("是否规上工业")
    evaluated_tax = models.DecimalField("评价税收(万元)", **DECIMAL)
    electricity = models.DecimalField("用电量(万千瓦时)", **DECIMAL)
    value_added = models.DecimalField("工业增加值(万元)", **DECIMAL)
    main_revenue = models.DecimalField("主营业务收入(万元)", **DECIMAL)
    rd_spend = models.DecimalField("研发经费支出(万元)", **DECIMAL)
    energy_tce = models.DecimalField("综合能耗(吨标准煤)", **DECIMAL)
    emissions = models.DecimalField("主要污染物排放量(吨)", **DECIMAL)
    avg_employees = models.IntegerField("年平均职工人数", null=True, blank=True)
    veto = models.CharField("否决事项", max_length=200, blank=True, null=True)
    exempt = models.CharField("不参评原因", max_length=200, blank=True, null=True)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "亩均评价指标"
        constraints = [models.UniqueConstraint(fields=["entity", "year", "revision"], name="indicator_revision_unique")]
        indexes = [models.Index(fields=["year", "is_current"])]


class Method(models.Model):
    """An evaluation method as staff wrote it (YAML, §1.10); a changed method is a new row."""

    version = models.CharField("版本", max_length=12, unique=True)  # digest of its canonical form
    name = models.CharField("名称", max_length=200)
    year = models.PositiveSmallIntegerField("年度")
    text = models.TextField("方法（YAML）")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "评价方法"
        ordering = ["-year", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name}（{self.year}，{self.version}）"


class Evaluation(models.Model):
    """One run of a method over a year's data. The latest of a year is that year's evaluation;
    published, the firms confirm or object within the window; frozen, it is final."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        PUBLISHED = "published", "公示中"
        FINAL = "final", "已定稿"

    year = models.PositiveSmallIntegerField("年度", db_index=True)
    method = models.ForeignKey(Method, on_delete=models.PROTECT, verbose_name="方法")
    engine = models.CharField("引擎", max_length=10, default="duckdb")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField("评价时间")
    published_at = models.DateTimeField("公示时间", null=True, blank=True)
    window_ends = models.DateTimeField("公示截止", null=True, blank=True)
    frozen_at = models.DateTimeField("定稿时间", null=True, blank=True)
    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    firms = models.PositiveIntegerField("参评企业", default=0)

    class Meta:
        verbose_name = verbose_name_plural = "亩均评价"
        ordering = ["-year", "-created_at"]


class Result(models.Model):
    """One firm's line of an evaluation (§2.3), its confirmation or objection."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="results")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="land_results")
    group = models.CharField("分组", max_length=12, blank=True)
    area_mu = models.FloatField("用地面积(亩)", null=True)
    score = models.FloatField("得分", null=True)
    rank = models.PositiveIntegerField("名次", null=True)
    klass = models.CharField("类别", max_length=1, blank=True, db_column="class")
    note = models.CharField("说明", max_length=300, blank=True)
    points = models.JSONField("各指标得分", default=dict)
    confirmed_at = models.DateTimeField("企业确认时间", null=True, blank=True)
    objection = models.ForeignKey("service_requests.ServiceRequest", null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+", verbose_name="异议诉求")

    GROUP_NAMES = {"above": "规上工业企业", "below_large": "规下企业（用地达标准）", "below_small": "规下企业（用地不足标准）",
                   "tenant": "租用厂房企业"}

    @property
    def group_name(self) -> str:
        return self.GROUP_NAMES.get(self.group, self.group or "—")

    class Meta:
        verbose_name = verbose_name_plural = "亩均评价结果"
        constraints = [models.UniqueConstraint(fields=["evaluation", "entity"], name="result_unique")]
        indexes = [models.Index(fields=["evaluation", "group", "klass"])]


class Remediation(models.Model):
    """A low-efficiency parcel's remediation case (低效工业用地整治)."""

    class Plan(models.TextChoices):
        UPGRADE = "upgrade", "提升改造"
        MERGE = "merge", "兼并重组"
        BUY_BACK = "buy_back", "收购储备"
        TAKE_BACK = "take_back", "依法收回"
        M0 = "m0", "转型新型产业用地（M0）"
        UNDECIDED = "", "待定"

    class Status(models.TextChoices):
        FLAGGED = "flagged", "已认定"
        ONGOING = "ongoing", "整治中"
        DONE = "done", "已完成"

    parcel_id = models.CharField("宗地编号", max_length=60, db_index=True)
    entity = models.ForeignKey(Entity, null=True, on_delete=models.SET_NULL, db_column="uscc", verbose_name="使用企业")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="责任镇街")
    department = models.ForeignKey("service_requests.Department", null=True, blank=True, on_delete=models.SET_NULL,
                                   verbose_name="责任部门")
    area_mu = models.FloatField("面积(亩)")
    flags = models.JSONField("认定规则", default=list)  # the ids of the rules that flagged it
    reasons = models.CharField("认定理由", max_length=500)
    plan = models.CharField("整治方式", max_length=12, choices=Plan.choices, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.FLAGGED)
    milestones = models.JSONField("节点", default=list)  # [{"label", "due", "done"}]
    tax_per_mu_before = models.FloatField("整治前亩均税收(万元/亩)", null=True)
    tax_per_mu_after = models.FloatField("整治后亩均税收(万元/亩)", null=True, blank=True)
    after_year = models.PositiveSmallIntegerField("整治后年度", null=True, blank=True)
    flagged_year = models.PositiveSmallIntegerField("认定年度")
    history = models.JSONField("变更记录", default=list)  # [{"at", "by", "note"}]
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "低效用地整治"
        constraints = [models.UniqueConstraint(fields=["parcel_id", "flagged_year"], name="remediation_unique")]
        indexes = [models.Index(fields=["town", "status"])]
