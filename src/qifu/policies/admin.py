"""Policies in Django admin, read-only: policies change by loading their YAML (a new version),
matches and the ledger only through the named actions. Bank accounts are not listed."""

from django.contrib import admin

from qifu.land.admin import ReadOnly
from qifu.policies.models import Match, MatchRun, Payment, PaymentBatch, Policy


@admin.register(Policy)
class PolicyAdmin(ReadOnly):
    list_display = ("code", "title", "year", "mode", "budget", "version", "updated_at")
    list_filter = ("year", "mode")
    search_fields = ("code", "title")


@admin.register(MatchRun)
class MatchRunAdmin(ReadOnly):
    list_display = ("policy", "version", "status", "phase", "created_at", "finished_at", "summary")
    list_filter = ("status",)


@admin.register(Match)
class MatchAdmin(ReadOnly):
    list_display = ("policy", "entity", "amount", "status", "eligible_on")
    list_filter = ("status", "policy")
    search_fields = ("entity__uscc",)
    raw_id_fields = ("entity",)
    # the history as the match page shows it, from the line of the match's making
    exclude = ("bank_account", "history")
    readonly_fields = ("record",)
    show_full_result_count = False

    @admin.display(description="变更记录")
    def record(self, m: Match) -> str:
        return "\n".join(f"{h['at'][:16]} · {h['by']} · {h['note']}" for h in m.events)


@admin.register(Payment)
class PaymentAdmin(ReadOnly):
    list_display = ("id", "policy", "match", "seq", "amount", "status", "batch", "paid_on")
    list_filter = ("status", "policy")
    raw_id_fields = ("match",)


@admin.register(PaymentBatch)
class PaymentBatchAdmin(ReadOnly):
    list_display = ("number", "created_at", "lines", "total", "status")
