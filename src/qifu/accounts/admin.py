from django.contrib import admin

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
