"""Enterprise requests (企业诉求): one queue from stations, the portal, the hotline and Open311."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from qifu.engine.requests.categories import CATEGORIES
from qifu.engine.requests.workflow import LABELS, MOVE_LABELS, State
from qifu.registry.models import Entity, Township

CATEGORY_CHOICES = [(c.code, c.name) for c in CATEGORIES]
STATE_CHOICES = [(s.value, LABELS[s]) for s in State]
MOVE_CHOICES = [(m.value, label) for m, label in MOVE_LABELS.items()] + [
    ("submit", "提交"), ("escalate", "督办"), ("rate", "评价"), ("warn", "临期提醒"), ("overdue", "超期"),
    ("edit", "修改分类")]


class Channel(models.TextChoices):
    """Where a request came in (contract §1.7)."""

    HOTLINE = "hotline", "12345热线"
    STATION = "station", "企服驿站"
    PORTAL = "portal", "网上"
    VISIT = "visit", "走访"
    OPEN311 = "open311", "接口"


class Satisfaction(models.TextChoices):
    SATISFIED = "satisfied", "满意"
    BASICALLY = "basically", "基本满意"
    DISSATISFIED = "dissatisfied", "不满意"


class Department(models.Model):
    """A handling department (承办部门). Its name is configuration: a county names its own."""

    name = models.CharField("名称", max_length=100, unique=True)
    email = models.CharField("通知邮箱", max_length=200, blank=True)
    phone = models.CharField("通知手机", max_length=50, blank=True)
    active = models.BooleanField("启用", default=True)

    class Meta:
        verbose_name = verbose_name_plural = "承办部门"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def reach(self) -> tuple[str, str]:
        """(channel, recipient) a notice to the department goes by: its email, else its mobile."""
        return ("email", self.email) if self.email else ("sms", self.phone)


class CategorySetting(models.Model):
    """A category of §1.7.1 (the codes are fixed), its department and time limits in working days."""

    code = models.CharField("代码", max_length=20, primary_key=True, choices=CATEGORY_CHOICES)
    name = models.CharField("名称", max_length=50)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, verbose_name="承办部门")
    sign_days = models.DecimalField("签收时限（工作日）", max_digits=5, decimal_places=2, default=1)
    answer_days = models.DecimalField("答复时限（工作日）", max_digits=5, decimal_places=2, default=5)

    class Meta:
        verbose_name = verbose_name_plural = "诉求类别"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class RoutingOverride(models.Model):
    """A phrase that always means a category, whatever the model says (edited by staff)."""

    phrase = models.CharField("短语", max_length=50, unique=True)
    category = models.CharField("类别", max_length=20, choices=CATEGORY_CHOICES)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "分类规则"
        ordering = ["phrase"]


class ApiKey(models.Model):
    """An Open311 key for a partner or a station's device (`qifu apikey NAME`): only its hash kept."""

    name = models.CharField("名称", max_length=100)
    prefix = models.CharField("前缀", max_length=8, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField("停用时间", null=True, blank=True)
    last_used_at = models.DateTimeField("最近使用", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "Open311 接口密钥"

    def __str__(self) -> str:
        return f"{self.name}（{self.prefix}…）"


class ServiceRequest(models.Model):
    """One request, however it came in; its clock runs in working days (``engine.requests``)."""

    number = models.CharField("诉求编号", max_length=40, unique=True)
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.SET_NULL, db_column="uscc",
                               related_name="requests")
    town = models.ForeignKey(Township, null=True, blank=True, on_delete=models.PROTECT, verbose_name="所属镇街")
    channel = models.CharField("渠道", max_length=10, choices=Channel.choices)
    category = models.CharField("诉求类别", max_length=20, choices=CATEGORY_CHOICES, blank=True)
    # True once a person chose or confirmed the category (a hotline's classification, staff):
    # what the routing model learns from. A suggestion alone is not.
    category_confirmed = models.BooleanField("类别已确认", default=False)
    route_score = models.FloatField("分类把握", null=True, blank=True)
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, verbose_name="承办部门")
    text = models.TextField("诉求内容", max_length=4000)
    contact_name = models.CharField("联系人", max_length=50, blank=True)
    contact_phone = models.CharField("联系电话", max_length=50, blank=True)
    contact_email = models.CharField("联系邮箱", max_length=200, blank=True)
    address = models.CharField("地址", max_length=300, blank=True)
    lat = models.FloatField(null=True, blank=True)
    long = models.FloatField(null=True, blank=True)
    status = models.CharField("状态", max_length=12, choices=STATE_CHOICES, default=State.SUBMITTED)
    submitted_at = models.DateTimeField("受理时间", db_index=True)
    signed_at = models.DateTimeField("签收时间", null=True, blank=True)
    answered_at = models.DateTimeField("答复时间", null=True, blank=True)
    closed_at = models.DateTimeField("办结时间", null=True, blank=True, db_index=True)  # the dashboard counts a month's
    updated_at = models.DateTimeField("更新时间", db_index=True)
    sign_due = models.DateTimeField("签收期限", null=True, blank=True)
    answer_due = models.DateTimeField("答复期限", null=True, blank=True)
    waiting_since = models.DateTimeField("暂停计时自", null=True, blank=True)
    warned = models.CharField("已提醒", max_length=20, blank=True)  # "sign", "answer": 80% warnings sent
    overdue = models.BooleanField("已超期", default=False)
    escalated = models.BooleanField("已督办", default=False)
    answer = models.TextField("答复内容", blank=True)
    satisfaction = models.CharField("满意度", max_length=12, choices=Satisfaction.choices, blank=True)
    rating_comment = models.CharField("评价意见", max_length=500, blank=True)
    rated_at = models.DateTimeField("评价时间", null=True, blank=True)
    callback_needed = models.BooleanField("需回访", default=False)
    callback_done = models.BooleanField("已回访", default=False)
    callback_note = models.CharField("回访记录", max_length=500, blank=True)
    reopen_count = models.PositiveSmallIntegerField("重办次数", default=0)
    transfer_count = models.PositiveSmallIntegerField("转办次数", default=0)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="duplicates", verbose_name="重复于")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="接口")
    imported_at = models.DateTimeField("导入时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "企业诉求"
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["status", "department"]), models.Index(fields=["town", "status"]),
                   models.Index(fields=["category", "submitted_at"])]

    def __str__(self) -> str:
        return self.number


class RequestEvent(models.Model):
    """Every change to a request: who, when, what and why."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField("时间")
    move = models.CharField("操作", max_length=24, choices=MOVE_CHOICES)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField("操作方", max_length=100)  # a staff user's name, 企业, 系统, 接口：NAME
    from_department = models.CharField(max_length=100, blank=True)
    to_department = models.CharField(max_length=100, blank=True)
    note = models.TextField("说明", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "诉求办理记录"
        ordering = ["at", "id"]


class Attachment(models.Model):
    """A file kept outside the database, under $QIFU_DATA_DIR/attachments, by its digest."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField("文件名", max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "诉求附件"
