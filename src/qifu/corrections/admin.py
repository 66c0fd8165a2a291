from django.contrib import admin

from qifu.corrections.models import CorrectionNotice, Explanation


@admin.register(CorrectionNotice)
class CorrectionNoticeAdmin(admin.ModelAdmin):
    list_display = ("entity", "report_year", "issued_on", "deadline", "channel")
    list_filter = ("report_year", "channel")
    raw_id_fields = ("entity", "message", "findings")


@admin.register(Explanation)
class ExplanationAdmin(admin.ModelAdmin):
    list_display = ("finding", "submitted_at", "status", "reviewed_by")
    list_filter = ("status",)
    raw_id_fields = ("finding",)
