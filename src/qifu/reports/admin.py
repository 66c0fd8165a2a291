from django.contrib import admin

from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.reports.models import AnnualReport, Shareholder


@admin.register(AnnualReport)
class AnnualReportAdmin(MaskedFieldsAdmin):
    masked = ("phone", "email")
    list_display = ["entity_id", "report_year", "revision", "is_current", "filed_at"]
    list_filter = ["report_year", "is_current"]
    search_fields = ["entity__uscc"]
    raw_id_fields = ["entity"]
    show_full_result_count = False


@admin.register(Shareholder)
class ShareholderAdmin(admin.ModelAdmin):
    list_display = ["entity_id", "report_year", "shareholder_name", "subscribed_amount", "paid_in_amount"]
    raw_id_fields = ["entity"]
    show_full_result_count = False
