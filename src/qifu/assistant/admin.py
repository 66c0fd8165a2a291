from django.contrib import admin

from qifu.assistant.actions import do_review_entry
from qifu.assistant.models import Handoff, KnowledgeEntry


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ["created_at", "question", "topic", "channel", "status"]
    list_filter = ["status", "topic", "channel"]
    search_fields = ["question"]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "question", "source", "status", "proposed_by", "reviewed_by"]
    list_filter = ["status"]
    actions = ["approve", "reject"]

    @admin.action(description="启用所选条目（助手开始使用）")
    def approve(self, request, queryset):
        for entry in queryset:
            do_review_entry(entry, request.user, approve=True)

    @admin.action(description="不采用所选条目")
    def reject(self, request, queryset):
        for entry in queryset:
            do_review_entry(entry, request.user, approve=False)
