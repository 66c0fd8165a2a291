from django.contrib import admin

from qifu.accounts import masking
from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.reminders import sender
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
    list_display = ("planned_for", "purpose", "addressee", "channel", "entity", "group", "status", "attempts")
    list_filter = ("purpose", "addressee", "channel", "status", "group")
    search_fields = ("entity__uscc",)
    raw_id_fields = ("entity",)
    masked = ("key", "recipient", "body")  # each quotes the phone number or address
    readonly_fields = tuple(f.name for f in OutboxMessage._meta.fields if f.name not in ("key", "recipient", "body"))

    def has_add_permission(self, request):
        return False

    actions = ("resend", "drop")

    @admin.action(description="核对后重发所选的“状态未知”消息")
    def resend(self, request, queryset):
        self._settle(request, queryset, sender.do_resend, "核对后重发", "已重新放入发件箱")

    @admin.action(description="核对后作废所选的“状态未知”消息（已发出或不再需要）")
    def drop(self, request, queryset):
        self._settle(request, queryset, sender.do_drop, "核对后作废", "已作废")

    def _settle(self, request, queryset, act, what: str, done: str) -> None:
        """Only messages 状态未知 are touched; each is written to the admin's history."""
        unknown = list(queryset.filter(status=OutboxMessage.Status.UNKNOWN))
        act([m.pk for m in unknown])
        for m in unknown:
            self.log_change(request, m, what)
        skipped = queryset.count() - len(unknown)
        self.message_user(request, f"{done} {len(unknown)} 条" + (f"；另有 {skipped} 条不是“状态未知”，未处理" if skipped else ""))


@admin.register(ContactTask)
class ContactTaskAdmin(admin.ModelAdmin):
    list_display = ("due_on", "channel", "entity", "status")
    list_filter = ("status", "channel", "entity__town")
    raw_id_fields = ("entity", "message")
