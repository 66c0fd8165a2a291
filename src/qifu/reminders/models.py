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
        indexes = [models.Index(fields=["sent_at"])]
