from django.contrib import admin

from qifu.accounts import masking
from qifu.accounts.models import AuditEvent, StaffProfile


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
