from django.contrib import admin
from django.utils import timezone

from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.service_requests.models import ApiKey, CategorySetting, Department, RoutingOverride, ServiceRequest


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "active")
    search_fields = ("name",)


@admin.register(CategorySetting)
class CategorySettingAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "department", "sign_days", "answer_days")
    readonly_fields = ("code", "name")

    def has_add_permission(self, request):
        return False  # the codes are fixed (contract §1.7.1)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RoutingOverride)
class RoutingOverrideAdmin(admin.ModelAdmin):
    list_display = ("phrase", "category", "created_by", "created_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "key_hash", "created_at", "last_used_at")
    actions = ["revoke"]

    @admin.action(description="停用所选密钥")
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())

    def has_add_permission(self, request):
        return False  # issued by `qifu apikey NAME`, which shows the key once


@admin.register(ServiceRequest)
class ServiceRequestAdmin(MaskedFieldsAdmin):
    masked = ("text", "contact_name", "contact_phone", "contact_email")
    list_display = ("number", "submitted_at", "channel", "category", "department", "status")
    list_filter = ("status", "channel", "category", "department")
    search_fields = ("number", "entity__uscc")
    raw_id_fields = ("entity", "duplicate_of")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # requests come in through the queue, the portal, imports and Open311
