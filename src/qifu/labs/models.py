"""Shared labs (共享实验室): the catalogue of labs and their instruments, bookings of an
instrument's time slots, innovation vouchers (创新券) that pay part of a booking, and the test
batches a lab records with its report.

Two firms never hold the same slot: each booked slot is a row, unique per instrument, unit and
start while it is active, so the database itself refuses the second booking, also under
concurrent requests."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from qifu.registry.models import Entity, Township
from qifu.service_requests.models import Satisfaction

YUAN = {"max_digits": 14, "decimal_places": 2}


class Lab(models.Model):
    class Owner(models.TextChoices):
        COMPANY = "company", "企业实验室"
        INSTITUTE = "institute", "科研院所"
        UNIVERSITY = "university", "高校"
        PUBLIC = "public", "公共检测机构"

    code = models.CharField("实验室编号", max_length=40, unique=True)
    name = models.CharField("实验室名称", max_length=200)
    owner_kind = models.CharField("依托单位类型", max_length=12, choices=Owner.choices)
    owner_name = models.CharField("依托单位", max_length=200)
    # the owner firm, when it is a market entity of the county
    owner = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.SET_NULL, db_column="owner_uscc",
                              related_name="labs_owned", verbose_name="依托企业")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所在镇街")
    address = models.CharField("地址", max_length=300, blank=True)
    accreditation = models.CharField("资质（CMA/CNAS）", max_length=200, blank=True)
    accredited_until = models.DateField("资质有效期至", null=True, blank=True)
    open_days = models.CharField("开放日（1=周一）", max_length=7, default="12345")
    opens = models.TimeField("开放时间")
    closes = models.TimeField("关闭时间")
    contact_name = models.CharField("联系人", max_length=50, blank=True)
    contact_phone = models.CharField("联系电话", max_length=50, blank=True)
    voucher_ok = models.BooleanField("可用创新券", default=True)
    # a firm's booking holds its slots but waits for the lab's confirmation (待确认)
    needs_approval = models.BooleanField("预约需实验室确认", default=False)
    # the days a send-in order's samples are kept after its report is issued (留样期): the firm may
    # ask for a re-test (复检) of them within it, and they are not disposed of before it ends
    retain_days = models.PositiveSmallIntegerField("留样期（天）", default=15)
    rules = models.TextField("开放规则", blank=True)
    active = models.BooleanField("开放中", default=True)
    updated_at = models.DateTimeField("更新时间")

    class Meta:
        verbose_name = verbose_name_plural = "共享实验室"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Instrument(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="instruments")
    code = models.CharField("仪器编号", max_length=40)
    name = models.CharField("仪器名称", max_length=200)
    capabilities = models.TextField("检测能力", blank=True)
    standards = models.TextField("检测标准", blank=True)
    price_per_hour = models.DecimalField("收费（元/小时）", **YUAN)
    slot_minutes = models.PositiveSmallIntegerField("每个时段（分钟）", default=60)
    units = models.PositiveSmallIntegerField("同时可用台数", default=1)
    # booked only by a firm whose staff the lab has trained on it (``Qualification``)
    needs_training = models.BooleanField("需培训上机", default=False)
    active = models.BooleanField("开放中", default=True)

    class Meta:
        verbose_name = verbose_name_plural = "共享仪器"
        ordering = ["lab__code", "code"]
        constraints = [models.UniqueConstraint(fields=["lab", "code"], name="instrument_code_unique")]

    def __str__(self) -> str:
        return f"{self.name}（{self.lab.name}）"


class Qualification(models.Model):
    """A firm whose staff the lab has trained on an instrument that needs it (上机资格): it books
    the instrument itself until ``until``. Granted by the lab's staff after the training, and
    withdrawn (``revoked_at``) when the firm misused the instrument; granted again, the same row
    is renewed."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="qualifications")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="lab_qualifications")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="企业所属镇街")
    until = models.DateField("有效期至")
    note = models.CharField("培训情况", max_length=300, blank=True)
    granted_at = models.DateTimeField("登记时间")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoked_at = models.DateTimeField("撤销时间", null=True, blank=True)
    revoked_reason = models.CharField("撤销原因", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "上机资格"
        ordering = ["instrument_id", "-until"]
        constraints = [models.UniqueConstraint(fields=["instrument", "entity"], name="qualification_once")]

    def holds(self, day: dt.date) -> bool:
        return self.revoked_at is None and self.until >= day


class Closure(models.Model):
    """Days a lab, or one of its instruments, does not open beyond statutory holidays
    (maintenance, calibration, an accreditation audit): nothing can be booked on them, and the
    bookings and waits there were cancelled and their firms told when it was set
    (``actions.do_close``)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="closures")
    instrument = models.ForeignKey(Instrument, null=True, blank=True, on_delete=models.CASCADE, related_name="closures",
                                   verbose_name="仪器（空：整个实验室）")
    first_day = models.DateField("停开放首日")
    last_day = models.DateField("停开放末日")
    reason = models.CharField("原因", max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField("登记时间")

    class Meta:
        verbose_name = verbose_name_plural = "停开放"
        ordering = ["first_day", "id"]
        indexes = [models.Index(fields=["lab", "last_day"])]
        constraints = [models.CheckConstraint(condition=Q(last_day__gte=models.F("first_day")),
                                              name="closure_days_in_order")]

    def __str__(self) -> str:
        what = self.instrument.name if self.instrument_id else "整个实验室"
        return f"{what} {self.first_day}–{self.last_day}：{self.reason}"


class Voucher(models.Model):
    """A firm's innovation voucher for a year: the most it pays, and the share of each
    booking's price it covers."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="vouchers")
    year = models.PositiveSmallIntegerField("年度")
    budget = models.DecimalField("额度（元）", **YUAN)
    share = models.DecimalField("抵扣比例", max_digits=4, decimal_places=2, default=0.5)
    granted_at = models.DateTimeField("发放时间")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = verbose_name_plural = "创新券"
        constraints = [
            models.UniqueConstraint(fields=["entity", "year"], name="voucher_once_a_year"),
            models.CheckConstraint(condition=Q(budget__gte=0), name="voucher_budget_not_negative"),
            models.CheckConstraint(condition=Q(share__gt=0) & Q(share__lte=1), name="voucher_share_in_range"),
        ]


class Rated(models.Model):
    """The firm's rating of a lab's service once its test is done (政务服务“好差评”), once; a
    不满意 is followed up by staff (差评回访): what the lab and the firm said, and who called."""

    rating = models.CharField("企业评价", max_length=12, choices=Satisfaction.choices, blank=True)
    rating_comment = models.CharField("评价意见", max_length=300, blank=True)
    rated_at = models.DateTimeField("评价时间", null=True, blank=True)
    callback_note = models.CharField("回访情况", max_length=300, blank=True)
    callback_at = models.DateTimeField("回访时间", null=True, blank=True)
    callback_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        abstract = True


class Booking(Rated):
    class Status(models.TextChoices):
        PENDING = "pending", "待实验室确认"
        BOOKED = "booked", "已预约"
        DONE = "done", "已完成"
        CANCELLED = "cancelled", "已取消"

    class Channel(models.TextChoices):
        PORTAL = "portal", "企业网上预约"
        STAFF = "staff", "工作人员代约"
        API = "api", "接口"

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="bookings")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="lab_bookings")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="企业所属镇街")
    start = models.DateTimeField("开始")
    end = models.DateTimeField("结束")
    unit = models.PositiveSmallIntegerField("台号", default=1)
    purpose = models.CharField("检测内容", max_length=500)
    # the price is fixed when the booking is made
    price = models.DecimalField("费用（元）", **YUAN)
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="bookings")
    voucher_amount = models.DecimalField("创新券抵扣（元）", default=0, **YUAN)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.BOOKED)
    channel = models.CharField("渠道", max_length=8, choices=Channel.choices)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField("预约时间")
    cancelled_at = models.DateTimeField("取消时间", null=True, blank=True)
    cancel_reason = models.CharField("取消原因", max_length=300, blank=True)
    # at a lab that confirms bookings: when and by whom this one was confirmed
    confirmed_at = models.DateTimeField("确认时间", null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        verbose_name = verbose_name_plural = "仪器预约"
        ordering = ["-start"]
        indexes = [models.Index(fields=["entity", "status"]), models.Index(fields=["town", "start"])]

    @property
    def to_pay(self):
        return self.price - self.voucher_amount


class BookedSlot(models.Model):
    """One slot of one unit of an instrument, held by a booking while it is active."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="slots")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    unit = models.PositiveSmallIntegerField()
    start = models.DateTimeField()
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "unit", "start"], condition=Q(active=True),
                                    name="slot_held_once"),
        ]


FREE_CANCEL_HOURS = 24  # a firm cancels itself until a day before; later, the lab cancels
ACTIVE = ("pending", "booked")  # a booking that holds its slots


class Waiting(models.Model):
    """A firm waiting for a slot that is full (候补): when a booking of it is cancelled, the
    firm that has waited longest is booked in its place, on the terms it asked for, and told.
    A wait is served only while the firm could still cancel what it gets, so one still open
    when its slot is less than ``FREE_CANCEL_HOURS`` away is over (``now_status``)."""

    class Status(models.TextChoices):
        WAITING = "waiting", "候补中"
        BOOKED = "booked", "已约上"
        WITHDRAWN = "withdrawn", "已撤回"
        EXPIRED = "expired", "未约上"

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="waiting")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="lab_waiting")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="企业所属镇街")
    start = models.DateTimeField("开始")
    slots = models.PositiveSmallIntegerField("连续时段数", default=1)
    purpose = models.CharField("检测内容", max_length=500)
    use_voucher = models.BooleanField("使用创新券", default=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.WAITING)
    created_at = models.DateTimeField("登记时间")
    closed_at = models.DateTimeField("结束时间", null=True, blank=True)
    booking = models.OneToOneField(Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="waited")
    note = models.CharField("说明", max_length=300, blank=True)
    # the staff member who put the firm on the list (by phone or at a service station), if not the firm
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="代为登记")

    class Meta:
        verbose_name = verbose_name_plural = "候补"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "entity", "start"], condition=Q(status="waiting"),
                                    name="waiting_once"),
        ]
        indexes = [models.Index(fields=["instrument", "status", "start"]), models.Index(fields=["entity", "status"])]

    def now_status(self, now=None) -> str:
        """The status as it stands now: an open wait whose slot is too near is expired, whether or
        not a cancellation has closed it yet (``labs.actions.serve_waiting`` writes that down)."""
        now = now or timezone.now()
        if self.status == self.Status.WAITING and self.start - now < dt.timedelta(hours=FREE_CANCEL_HOURS):
            return self.Status.EXPIRED
        return self.status

    def get_now_status_display(self) -> str:
        return self.Status(self.now_status()).label


class TestBatch(models.Model):
    class Conclusion(models.TextChoices):
        PASS = "pass", "合格"
        FAIL = "fail", "不合格"
        DATA = "data", "仅出具数据"

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="batches")
    booking = models.OneToOneField(Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="batch")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="test_batches")
    town = models.ForeignKey(Township, on_delete=models.PROTECT)
    tested_on = models.DateField("检测日期")
    items = models.CharField("检测项目", max_length=500)
    samples = models.PositiveIntegerField("样品数", default=1)
    report_no = models.CharField("报告编号", max_length=60)
    conclusion = models.CharField("结论", max_length=6, choices=Conclusion.choices)
    report_name = models.CharField("报告文件", max_length=200, blank=True)
    report_sha256 = models.CharField(max_length=64, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    recorded_at = models.DateTimeField("录入时间")

    class Meta:
        verbose_name = verbose_name_plural = "检测批次"
        ordering = ["-tested_on"]
        constraints = [models.UniqueConstraint(fields=["lab", "report_no"], name="report_no_unique_in_lab")]


class SampleOrder(Rated):
    """A send-in test order (送检): the firm sends its samples to a lab, which receives them (or
    refuses them, saying why), tests them, and issues the report once a second person has
    checked it; the report then carries a code anyone can check it by. Every step is a
    ``SampleEvent``: who had the samples and what was done, when (the chain of custody)."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "待收样"
        TESTING = "testing", "检测中"
        REVIEW = "review", "待审核"
        ISSUED = "issued", "已出报告"
        REJECTED = "rejected", "拒收"
        WITHDRAWN = "withdrawn", "已撤回"

    class AfterTest(models.TextChoices):
        RETURN = "return", "退回企业"
        DISPOSE = "dispose", "由实验室处置"

    CLOSED = (Status.REJECTED, Status.WITHDRAWN)  # ended without a report
    DISPOSED_AS_AGREED = "按委托约定由实验室处置"  # the disposal's note when the lab wrote none

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="orders")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="sample_orders")
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="企业所属镇街")
    sample_name = models.CharField("样品名称及型号", max_length=200)
    samples = models.PositiveIntegerField("样品数量")
    items = models.CharField("检测项目", max_length=500)
    standard = models.CharField("检测依据", max_length=200, blank=True)
    after_test = models.CharField("检后样品", max_length=8, choices=AfterTest.choices, default=AfterTest.RETURN)
    use_voucher = models.BooleanField("使用创新券", default=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    channel = models.CharField("渠道", max_length=8, choices=Booking.Channel.choices, default=Booking.Channel.PORTAL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="代为登记")
    created_at = models.DateTimeField("委托时间")
    received_at = models.DateTimeField("收样时间", null=True, blank=True)
    condition = models.CharField("样品状态", max_length=300, blank=True)
    # the price is fixed when the lab receives the samples and knows what the test takes
    price = models.DecimalField("费用（元）", null=True, blank=True, **YUAN)
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    voucher_amount = models.DecimalField("创新券抵扣（元）", default=0, **YUAN)
    # the result as the tester enters it; it becomes the test batch when a second person signs it off
    tested_on = models.DateField("检测日期", null=True, blank=True)
    conclusion = models.CharField("结论", max_length=6, choices=TestBatch.Conclusion.choices, blank=True)
    report_no = models.CharField("报告编号", max_length=60, blank=True)
    report_name = models.CharField("报告文件", max_length=200, blank=True)
    report_sha256 = models.CharField(max_length=64, blank=True)
    tested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name="检测人")
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name="审核人")
    issued_at = models.DateTimeField("签发时间", null=True, blank=True)
    # the lab's retention period as it stood when the report was issued: what the report notice
    # promised the firm, kept when the lab later changes its period
    retain_days = models.PositiveSmallIntegerField("留样期（天）", null=True, blank=True)
    verify_code = models.CharField("防伪查询码", max_length=12, blank=True)
    batch = models.OneToOneField(TestBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="order")
    closed_reason = models.CharField("拒收或撤回原因", max_length=300, blank=True)
    # the samples leaving the lab once the report is issued: handed back (how: by courier with
    # its number, collected by whom) or disposed of, as ``after_test`` asked
    samples_out_at = models.DateTimeField("样品退回或处置时间", null=True, blank=True)
    samples_out_note = models.CharField("样品退回或处置说明", max_length=300, blank=True)
    # a re-test (复检) of another order's retained samples, asked for by the firm within the lab's
    # retention period; its report is the final word on them
    retest_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.RESTRICT, related_name="retests",
                                  verbose_name="复检的原委托")
    # a re-test whose conclusion differs from the original report's: the lab got it wrong the
    # first time and bears the re-test's fee; the firm pays nothing and its voucher is not drawn
    fee_by_lab = models.BooleanField("复检费用由实验室承担", default=False)

    class Meta:
        verbose_name = verbose_name_plural = "送检委托"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "status"]), models.Index(fields=["entity", "status"]),
                   models.Index(fields=["town", "status"])]

    def __str__(self) -> str:
        return f"送检 {self.pk}：{self.sample_name}（{self.lab.name}）"

    @property
    def samples_held(self) -> bool:
        """The report is issued and the samples are still at the lab: to be handed back or
        disposed of."""
        return self.status == self.Status.ISSUED and self.samples_out_at is None

    @property
    def retain_until(self) -> dt.date | None:
        """The last day of the retention period (留样期) of an issued order's samples: the firm may
        ask for a re-test until then, and they are not disposed of before. None for a re-test
        (there is no re-test of a re-test) or at a lab that keeps nothing. The period is the one
        the lab had when it issued the report (``retain_days``)."""
        if self.issued_at is None or self.retest_of_id is not None or not self.retain_days:
            return None
        return timezone.localdate(self.issued_at) + dt.timedelta(days=self.retain_days)

    @property
    def retest_open(self) -> bool:
        """A re-test of this order was asked for and not withdrawn or refused (prefetch ``retests``)."""
        return any(r.status not in self.CLOSED for r in self.retests.all())

    @property
    def samples_went(self) -> str:
        """Where the samples went, as the lab's and the firm's pages say it (prefetch
        ``retests``): 转入复检委托 9, 退回企业：顺丰快递…, 由实验室处置 (with the lab's note, if
        it wrote one)."""
        if self.samples_out_at is None:
            return ""
        if self.retest_open:
            return self.samples_out_note
        if self.samples_out_note == self.DISPOSED_AS_AGREED:
            return self.get_after_test_display()
        return f"{self.get_after_test_display()}：{self.samples_out_note}"

    @property
    def to_pay(self):
        return 0 if self.fee_by_lab else (self.price or 0) - self.voucher_amount


class SampleEvent(models.Model):
    """One step of a send-in order's samples and report, in order: the chain of custody."""

    class Action(models.TextChoices):
        SUBMITTED = "submitted", "委托送检"
        RECEIVED = "received", "收样"
        REJECTED = "rejected", "拒收"
        WITHDRAWN = "withdrawn", "企业撤回"
        TESTED = "tested", "录入检测结果"
        RETURNED = "returned", "审核退回重检"
        ISSUED = "issued", "审核签发报告"
        BACK = "back", "样品退回企业"
        DISPOSED = "disposed", "样品处置"
        RETEST = "retest", "申请复检（留样转入复检委托）"
        KEPT = "kept", "复检未进行，留样仍在实验室"

    order = models.ForeignKey(SampleOrder, on_delete=models.CASCADE, related_name="events")
    action = models.CharField("环节", max_length=10, choices=Action.choices)
    at = models.DateTimeField("时间")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", verbose_name="经办人")
    note = models.CharField("说明", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "送检流转记录"
        ordering = ["at", "id"]
