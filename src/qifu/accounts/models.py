"""Staff roles and the audit trail of who saw whose personal data."""

from django.conf import settings
from django.db import models


class StaffProfile(models.Model):
    """What a staff account may see and do. A superuser without a profile is an administrator."""

    class Role(models.TextChoices):
        ADMIN = "admin", "局管理员"
        OFFICER = "officer", "镇街专管员"
        LEADER = "leader", "领导（只读）"
        DEPARTMENT = "department", "承办部门人员"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    role = models.CharField("角色", max_length=10, choices=Role.choices)
    town = models.ForeignKey("registry.Township", on_delete=models.PROTECT, null=True, blank=True,
                             verbose_name="所属镇街", help_text="镇街专管员必填：只能看到本镇街的主体、年报和任务")
    department = models.ForeignKey("service_requests.Department", on_delete=models.PROTECT, null=True, blank=True,
                                   verbose_name="承办部门", help_text="承办部门人员必填：只看到本部门承办的企业诉求")

    class Meta:
        verbose_name = verbose_name_plural = "工作人员角色"

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}{' · ' + self.town.name if self.town_id else ''}"


class AuditEvent(models.Model):
    """One look at unmasked personal data, or one export of a list."""

    class Action(models.TextChoices):
        VIEW_CONTACT = "view_contact", "查看联系方式"
        EXPORT = "export", "导出"
        VIEW_ENTITY = "view_entity", "查看主体"
        VIEW_ACCOUNT = "view_account", "查看银行账号"
        VIEW_PERSON = "view_person", "查看身份证号"
        ACCOUNT = "account", "账号管理"

    at = models.DateTimeField("时间", auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, verbose_name="用户")
    action = models.CharField("操作", max_length=20, choices=Action.choices)
    uscc = models.CharField("主体", max_length=18, blank=True, db_index=True)
    detail = models.CharField("详情", max_length=500, blank=True)
    ip = models.GenericIPAddressField("IP", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "个人信息访问审计"
        ordering = ["-at"]


class IssuedPassword(models.Model):
    """A password someone else set for an account (its first password, or a reset by an
    administrator): its holder must replace it at the next sign-in before any other page. Kept
    with the hash it was issued as, so that any password set after it (the holder's own, or
    `qifu demo`'s known one) ends the obligation without anyone clearing it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="issued_password")
    password = models.CharField(max_length=128)
    issued_at = models.DateTimeField("设置时间")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+", verbose_name="设置人")

    class Meta:
        verbose_name = verbose_name_plural = "待修改的初始密码"


class RateCounter(models.Model):
    """How many times something happened in a time window (sign-in codes per client address,
    wrong codes per credit code, …), counted atomically: see ``accounts.ratelimits``."""

    key = models.CharField(max_length=200, unique=True)  # what, whose, and the window's start
    window_start = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = verbose_name_plural = "频次计数"
