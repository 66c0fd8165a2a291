from django.contrib import admin

from qifu.assistant.models import Handoff


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ["created_at", "question", "topic", "channel", "status"]
    list_filter = ["status", "topic", "channel"]
    search_fields = ["question"]
