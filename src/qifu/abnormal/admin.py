from django.contrib import admin

from qifu.abnormal.models import Listing, Ruling, SetAside


class RulingInline(admin.TabularInline):
    model = Ruling
    extra = 0
    fields = readonly_fields = ("number", "kind", "decided_on", "decided_by", "applied_at", "reason")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ("number", "entity", "ground", "report_year", "kind", "status", "listed_on", "removed_on")
    list_filter = ("ground", "report_year", "kind", "status")
    search_fields = ("number", "entity__uscc", "entity__name")
    raw_id_fields = ("entity",)
    inlines = [RulingInline]


@admin.register(Ruling)
class RulingAdmin(admin.ModelAdmin):
    list_display = ("number", "kind", "listing", "decided_on", "decided_by")
    list_filter = ("kind", "decided_on")
    search_fields = ("number", "listing__number", "listing__entity__uscc", "listing__entity__name")
    raw_id_fields = ("listing",)


@admin.register(SetAside)
class SetAsideAdmin(admin.ModelAdmin):
    list_display = ("entity", "found_on", "reason", "decided_by", "decided_at")
    search_fields = ("entity__uscc", "entity__name")
    raw_id_fields = ("entity",)
