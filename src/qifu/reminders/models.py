from django.db import models

from qifu.engine.contract import CHANNELS, DELIVERY_STATUSES, PURPOSES
from qifu.registry.models import Entity


class ReminderRecord(models.Model):
    """A reminder that was sent, from before the platform (imported) or by it.

    Delivery receipts arrive as re-imports of the same (uscc, sent_at, channel) with a new
    status, so the status is updated in place.
    """

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="reminders", db_column="uscc")
    sent_at = models.DateTimeField("发送时间")
    channel = models.CharField("渠道", max_length=10, choices=CHANNELS)
    purpose = models.CharField("事由", max_length=12, choices=PURPOSES)
    status = models.CharField("状态", max_length=12, choices=DELIVERY_STATUSES)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "提醒记录"
        constraints = [models.UniqueConstraint(fields=["entity", "sent_at", "channel"], name="reminder_unique")]
        indexes = [models.Index(fields=["sent_at"]),
                   models.Index(fields=["imported_at"], name="reminder_imported")]  # analytics.stamp


class OutboxMessage(models.Model):
    """A reminder decided by qifu, stored before it is sent.

    ``key`` (purpose, recipient and day) is unique: deciding twice on the same day, or a
    restarted run, cannot create a second message. The sender marks a message ``sending`` and
    commits before it hands it to a channel, and ``sent`` after; a channel that accepts a
    client key (the SMS gateway, the file backend) deduplicates a resend after a crash, and an
    email left ``sending`` by a crash is surfaced as ``unknown`` for staff rather than sent twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "待发送"
        SENDING = "sending", "发送中"
        SENT = "sent", "已发送"
        DELIVERED = "delivered", "已送达"
        FAILED = "failed", "失败"
        UNKNOWN = "unknown", "状态未知"
        TASK = "task", "已派任务"

    class Addressee(models.TextChoices):
        ENTITY = "entity", "主体"
        DEPARTMENT = "department", "承办部门"
        EXPERT = "expert", "专家"

    key = models.CharField("幂等键", max_length=120, unique=True)
    # the entity the message is about; it is also to it unless ``addressee`` says otherwise
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="outbox", db_column="uscc")
    # whom it is to: a message to a department or an expert is filed under the entity it is
    # about (the outbox belongs to an entity) but is no contact of the entity's. A database
    # default too: the season's and the policies' messages are inserted as rows, not models.
    addressee = models.CharField("收件方", max_length=10, choices=Addressee.choices, default=Addressee.ENTITY,
                                 db_default=Addressee.ENTITY)
    also_for = models.TextField("同一号码的其他主体", blank=True)  # agent numbers: one message, many entities
    purpose = models.CharField("事由", max_length=12,
                               choices=PURPOSES + (("signin", "登录验证码"), ("request", "诉求通知"), ("policy", "政策通知"),
                                                  ("project", "项目通知"), ("lab", "实验室通知"),
                                                  ("expert", "专家通知"), ("abnormal", "经营异常通知"),
                                                  ("inspection", "抽查通知")))
    channel = models.CharField("渠道", max_length=10, choices=CHANNELS)
    recipient = models.CharField("接收方", max_length=200)
    body = models.TextField("内容")
    reason = models.TextField("决策理由")
    group = models.CharField("分组", max_length=10, default="treated")  # treated | holdout
    planned_for = models.DateField("计划日期")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField("尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试")
    last_error = models.TextField("最近错误", blank=True)
    provider_id = models.CharField("通道消息号", max_length=120, blank=True)
    sent_at = models.DateTimeField("发送时间", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "提醒发件箱"
        indexes = [models.Index(fields=["status", "next_attempt_at"]), models.Index(fields=["planned_for"])]


class ContactTask(models.Model):
    """A call or a visit for the staff of the entity's township (whichever it is now: a task
    follows its entity when a registry import moves it), closed with an outcome."""

    class Status(models.TextChoices):
        OPEN = "open", "待办"
        DONE = "done", "已完成"

    message = models.OneToOneField(OutboxMessage, on_delete=models.CASCADE, related_name="task")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="contact_tasks", db_column="uscc")
    channel = models.CharField("方式", max_length=10, choices=CHANNELS)
    due_on = models.DateField("办理日期")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.OPEN)
    outcome = models.TextField("结果", blank=True)
    closed_at = models.DateTimeField("办结时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "电话与上门任务"
        indexes = [models.Index(fields=["status", "due_on"])]


class OptOut(models.Model):
    """A phone number or email address that replied 退订: no more texts or emails to it."""

    recipient = models.CharField("号码或邮箱", max_length=200, unique=True)
    created_at = models.DateTimeField("退订时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "退订"
