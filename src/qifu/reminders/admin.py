from django.contrib import admin

from qifu.reminders.models import ContactTask, OptOut, OutboxMessage


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ("recipient", "created_at")
    search_fields = ("recipient",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("planned_for", "purpose", "channel", "entity", "group", "status", "attempts")
    list_filter = ("purpose", "channel", "status", "group")
    search_fields = ("entity__uscc", "key")
    raw_id_fields = ("entity",)
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ContactTask)
class ContactTaskAdmin(admin.ModelAdmin):
    list_display = ("due_on", "channel", "entity", "town", "status")
    list_filter = ("status", "channel", "town")
    raw_id_fields = ("entity", "message")
