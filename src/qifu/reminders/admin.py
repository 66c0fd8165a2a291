from django.contrib import admin

from qifu.accounts import masking
from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.reminders.models import ContactTask, OptOut, OutboxMessage


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ("masked_recipient", "created_at")
    search_fields = ("recipient",)  # staff type the number to find it

    @admin.display(description="号码或邮箱")
    def masked_recipient(self, obj):
        return masking.value(obj.recipient)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(MaskedFieldsAdmin):
    list_display = ("planned_for", "purpose", "channel", "entity", "group", "status", "attempts")
    list_filter = ("purpose", "channel", "status", "group")
    search_fields = ("entity__uscc",)
    raw_id_fields = ("entity",)
    masked = ("key", "recipient", "body")  # each quotes the phone number or address
    readonly_fields = tuple(f.name for f in OutboxMessage._meta.fields if f.name not in ("key", "recipient", "body"))

    def has_add_permission(self, request):
        return False


@admin.register(ContactTask)
class ContactTaskAdmin(admin.ModelAdmin):
    list_display = ("due_on", "channel", "entity", "status")
    list_filter = ("status", "channel", "entity__town")
    raw_id_fields = ("entity", "message")
