from django.contrib import admin

from qifu.imports.models import ImportRun


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["finished_at", "kind", "file_name", "rows", "inserted", "updated", "unchanged"]
    list_filter = ["kind"]
