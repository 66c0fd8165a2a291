"""Background exports in Django admin, read-only: who asked for which list, when, and what
became of it (the files themselves are downloaded only by the person who asked)."""

from django.contrib import admin

from qifu.land.admin import ReadOnly
from qifu.web.models import Export


@admin.register(Export)
class ExportAdmin(ReadOnly):
    list_display = ("created_at", "user", "label", "status", "rows_done", "expected_rows", "attempts", "finished_at")
    list_filter = ("status",)
    search_fields = ("user__username", "label")
    exclude = ("path",)  # the list's filters: a name or a credit code typed into the search
    show_full_result_count = False
