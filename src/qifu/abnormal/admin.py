from django.contrib import admin

from qifu.abnormal.models import Listing


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ("number", "entity", "report_year", "kind", "status", "listed_on", "removed_on")
    list_filter = ("report_year", "kind", "status")
    search_fields = ("number", "entity__uscc", "entity__name")
    raw_id_fields = ("entity",)
