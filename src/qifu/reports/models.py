from django.db import models
from django.db.models.functions import Lower

from qifu.engine.contract import OPERATING_STATUSES
from qifu.registry.models import MONEY, Entity


def _money(label: str) -> models.DecimalField:
    return models.DecimalField(label, **MONEY)


def _count(label: str) -> models.IntegerField:
    # Not Positive: a negative headcount is stored as filed and reported by FM-08 (contract §1).
    return models.IntegerField(label, null=True, blank=True)


class AnnualReport(models.Model):
    """One revision of an entity's annual report (年报) for one report year.

    A re-import with different content is a correction (修改): it adds revision n+1 and
    clears ``is_current`` on the earlier one, so history is kept and exactly one revision
    per (entity, report_year) is current. Money is in 万元; empty means "not reported".
    """

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="reports", db_column="uscc")
    report_year = models.PositiveSmallIntegerField("报告年度")
    revision = models.PositiveSmallIntegerField("版本", default=1)
    is_current = models.BooleanField("当前版本", default=True)
    imported_at = models.DateTimeField("导入时间")

    filed_at = models.DateTimeField("报送时间")
    phone = models.CharField("企业联系电话", max_length=50, null=True, blank=True)
    email = models.CharField("电子邮箱", max_length=200, null=True, blank=True)
    postcode = models.CharField("邮政编码", max_length=20, null=True, blank=True)
    contact_address = models.CharField("通信地址", max_length=300, null=True, blank=True)
    operating_status = models.CharField("经营状态", max_length=12, choices=OPERATING_STATUSES, null=True, blank=True)
    main_business_activity = models.CharField("主营业务活动", max_length=500, null=True, blank=True)
    employees = _count("从业人数")
    employees_female = _count("其中女性从业人数")
    has_website = models.BooleanField("是否有网站或网店", null=True, blank=True)
    total_assets = _money("资产总额")
    total_liabilities = _money("负债总额")
    total_equity = _money("所有者权益合计")
    total_revenue = _money("营业总收入")
    main_business_revenue = _money("其中:主营业务收入")
    total_profit = _money("利润总额")
    net_profit = _money("净利润")
    total_tax_paid = _money("纳税总额")
    turnover = _money("营业额或营业收入")
    coop_members = _count("成员人数")
    coop_sales = _money("销售额或营业收入")
    coop_surplus = _money("盈余总额")
    coop_gov_subsidies = _money("获得政府扶持资金、补助")
    coop_bank_loans = _money("金融贷款")
    si_pension_insured = _count("城镇职工基本养老保险参保人数")
    si_unemployment_insured = _count("失业保险参保人数")
    si_medical_insured = _count("职工基本医疗保险参保人数")
    si_injury_insured = _count("工伤保险参保人数")
    si_maternity_insured = _count("生育保险参保人数")
    si_base_pension = _money("单位缴费基数(养老)")
    si_base_unemployment = _money("单位缴费基数(失业)")
    si_base_medical = _money("单位缴费基数(医疗)")
    si_base_maternity = _money("单位缴费基数(生育)")
    si_paid_pension = _money("本期实际缴费金额(养老)")
    si_paid_unemployment = _money("本期实际缴费金额(失业)")
    si_paid_medical = _money("本期实际缴费金额(医疗)")
    si_paid_injury = _money("本期实际缴费金额(工伤)")
    si_paid_maternity = _money("本期实际缴费金额(生育)")
    si_arrears_total = _money("单位累计欠缴金额(合计)")

    class Meta:
        verbose_name = verbose_name_plural = "年度报告"
        constraints = [
            models.UniqueConstraint(fields=["entity", "report_year", "revision"], name="report_revision_unique"),
            models.UniqueConstraint(
                fields=["entity", "report_year"],
                condition=models.Q(is_current=True),
                name="report_one_current",
            ),
        ]
        indexes = [
            models.Index(fields=["report_year", "is_current"]),
            # the single-report engine counts entities sharing a phone, email or figures
            models.Index(fields=["phone"]),
            models.Index(Lower("email"), name="report_email_lower"),
            models.Index(fields=["total_revenue"]),
            models.Index(fields=["imported_at"], name="report_imported"),  # analytics.stamp
        ]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.report_year}年度 第{self.revision}版"


class Shareholder(models.Model):
    """股东及出资信息, one row per shareholder per report year (companies)."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="shareholders", db_column="uscc")
    report_year = models.PositiveSmallIntegerField("报告年度")
    shareholder_name = models.CharField("股东(发起人)", max_length=200)
    subscribed_amount = _money("认缴出资额(万元)")
    subscribed_due_date = models.DateField("认缴出资时间", null=True, blank=True)
    paid_in_amount = _money("实缴出资额(万元)")
    paid_in_date = models.DateField("实缴出资时间", null=True, blank=True)
    paid_in_form = models.CharField("实缴出资方式", max_length=20, null=True, blank=True)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "股东及出资"
        indexes = [models.Index(fields=["imported_at"], name="shareholder_imported")]  # analytics.stamp
        constraints = [
            models.UniqueConstraint(fields=["entity", "report_year", "shareholder_name"], name="shareholder_unique")
        ]
