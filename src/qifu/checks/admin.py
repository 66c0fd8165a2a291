from django.contrib import admin

from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.checks.models import CheckRun, Finding


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "report_year", "engine", "ruleset_version", "reports_checked", "findings",
                    "new_findings", "resolved"]


@admin.register(Finding)
class FindingAdmin(MaskedFieldsAdmin):
    masked = ("message",)
    list_display = ["entity_id", "report_year", "rule_id", "severity", "status", "message_masked"]
    list_filter = ["report_year", "severity", "status", "rule_id"]
    search_fields = ["entity__uscc"]
    raw_id_fields = ["entity"]
    show_full_result_count = False
