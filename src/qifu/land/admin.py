"""The land data in Django admin, read-only: evaluations and results change only through the
named actions (a method is never edited in place: a changed one is a new version)."""

from django.contrib import admin

from qifu.land.models import Evaluation, IndicatorRecord, Method, Parcel, Remediation


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Parcel)
class ParcelAdmin(ReadOnly):
    list_display = ("parcel_id", "entity", "role", "area_mu", "town", "idle")
    list_filter = ("role", "town")
    search_fields = ("parcel_id", "entity__uscc")
    raw_id_fields = ("entity",)
    show_full_result_count = False


@admin.register(IndicatorRecord)
class IndicatorAdmin(ReadOnly):
    list_display = ("entity", "year", "revision", "is_current", "above_threshold", "evaluated_tax")
    list_filter = ("year", "is_current", "above_threshold")
    search_fields = ("entity__uscc",)
    raw_id_fields = ("entity",)
    show_full_result_count = False


@admin.register(Method)
class MethodAdmin(ReadOnly):
    list_display = ("name", "year", "version", "created_at")


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnly):
    list_display = ("year", "method", "engine", "status", "firms", "created_at", "frozen_at")
    list_filter = ("year", "status")


@admin.register(Remediation)
class RemediationAdmin(ReadOnly):
    list_display = ("parcel_id", "entity", "town", "area_mu", "plan", "status", "flagged_year")
    list_filter = ("status", "plan", "town", "flagged_year")
    search_fields = ("parcel_id", "entity__uscc")
    raw_id_fields = ("entity",)
