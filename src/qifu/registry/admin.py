from django.contrib import admin

from qifu.accounts.admin import MaskedFieldsAdmin
from qifu.registry.models import Entity, Industry, Township


@admin.register(Township)
class TownshipAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "postcode"]


@admin.register(Industry)
class IndustryAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Entity)
class EntityAdmin(MaskedFieldsAdmin):
    masked = ("legal_rep", "phone", "email")
    list_display = ["uscc", "name", "entity_type", "town", "status", "established_on"]
    list_filter = ["entity_type", "status", "town"]
    search_fields = ["uscc", "name"]
    show_full_result_count = False
    list_select_related = ["town"]
