from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from qifu.accounts import masking, scope
from qifu.accounts.actions import record_issued
from qifu.accounts.models import AuditEvent, StaffProfile

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    """Django's own pages of users, as 账号管理 treats a password: one an administrator sets here
    for someone else (a new account, or 修改密码 on another's) is an issued password, which its
    holder replaces at the next sign-in; and each is audited. 账号管理 (/accounts/) is the
    page for accounts; this one stays for what only Django admin does."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and obj.has_usable_password():
            record_issued(obj, request.user)
            scope.audit(request, AuditEvent.Action.ACCOUNT, detail=f"在后台管理新建账号 {obj.username}")

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        user = self.get_object(request, unquote(id))
        if request.method == "POST" and response.status_code == 302 and user is not None:
            if user.pk != request.user.pk and user.has_usable_password():
                record_issued(user, request.user)
                scope.audit(request, AuditEvent.Action.ACCOUNT, detail=f"在后台管理设置 {user.username} 的密码")
        return response


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "town")
    list_filter = ("role", "town")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "user", "action", "uscc", "detail", "ip")
    list_filter = ("action",)
    search_fields = ("uscc", "user__username")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


class MaskedFieldsAdmin(admin.ModelAdmin):
    """A model admin that shows ``masked`` fields (phone numbers, emails, names, or free text
    quoting them) masked, read-only: the entity page's audited reveal is the one place staff
    see them whole."""

    masked: tuple[str, ...] = ()

    def get_exclude(self, request, obj=None):
        return tuple(super().get_exclude(request, obj) or ()) + self.masked

    def get_readonly_fields(self, request, obj=None):
        return tuple(super().get_readonly_fields(request, obj)) + tuple(f"{name}_masked" for name in self.masked)

    def __getattr__(self, name):
        if name.endswith("_masked") and name[:-7] in type(self).masked:
            field = name[:-7]

            @admin.display(description=self.model._meta.get_field(field).verbose_name)
            def shown(obj):
                value = getattr(obj, field)
                return masking.name(value) if field in ("legal_rep", "name") else masking.text(value)

            return shown
        raise AttributeError(name)
