from django.db import models


class SignInCode(models.Model):
    """A one-time code sent to an entity's registered phone or email. Only its hash is kept."""

    uscc = models.CharField("统一社会信用代码", max_length=18, db_index=True)
    code_hash = models.CharField(max_length=128)
    channel = models.CharField("渠道", max_length=10)
    sent_to = models.CharField("发送至（已脱敏）", max_length=200)
    created_at = models.DateTimeField("发送时间", db_index=True)
    expires_at = models.DateTimeField("失效时间")
    failures = models.PositiveSmallIntegerField("输错次数", default=0)
    used_at = models.DateTimeField("使用时间", null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "登录验证码"
