from django.contrib import admin

from qifu.inspections.models import Evidence, Extension, Inspection, Sample


@admin.register(Inspection)
class InspectionAdmin(admin.ModelAdmin):
    list_display = ("number", "title", "year", "kind", "rate", "population", "drawn_at", "finish_by")
    list_filter = ("year", "kind")
    search_fields = ("number", "title")


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ("inspection", "entity", "town", "result", "checked_on")
    list_filter = ("result", "town")
    search_fields = ("entity__uscc", "entity__name", "inspection__number")
    raw_id_fields = ("entity", "listing")
    filter_horizontal = ("inspectors",)


@admin.register(Evidence)
class EvidenceAdmin(admin.ModelAdmin):
    list_display = ("sample", "name", "size", "sent_at", "sent_by")
    search_fields = ("sample__entity__uscc", "name")
    raw_id_fields = ("sample",)


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ("inspection", "from_day", "to_day", "reason", "at", "by")
    search_fields = ("inspection__number",)
    raw_id_fields = ("inspection",)
