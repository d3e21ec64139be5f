"""The books in the admin: payment events (with their retry), the ledger, the counters and the
audit log, all read-only."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin.common import ReadOnlyAdmin, money_display
from campaigns.models import AuditLog, CampaignTotal, LedgerEntry, PaymentEvent
from campaigns.services import backoffice


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "provider", "event_type", "status_badge", "attempts", "received_at", "age",
                    "error_excerpt", "donation")
    list_filter = ("status", "provider", ("received_at", admin.DateFieldListFilter))
    search_fields = ("event_id", "donation_external_id", "last_error")
    list_select_related = ("donation",)
    actions = ("retry_events",)
    fields = ("provider", "event_id", "event_type", "status", "attempts", "last_error", "received_at", "processed_at",
              "donation", "donation_external_id", "body_pretty", "headers_pretty")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("campaigns.retry_payment_event")

    @admin.display(description=_("statut"), ordering="status")
    def status_badge(self, obj: PaymentEvent) -> str:
        return format_html('<span class="jauge-status jauge-status-{}">{}</span>', obj.status,
                           obj.get_status_display())

    @admin.display(description=_("âge"))
    def age(self, obj: PaymentEvent) -> str:
        # A deferred refund waits for its donation: how long it has waited is what to watch.
        return timesince(obj.received_at) if obj.status in ("received", "deferred") else ""

    @admin.display(description=_("erreur"))
    def error_excerpt(self, obj: PaymentEvent) -> str:
        return obj.last_error[:120]

    @admin.display(description=_("corps brut"))
    def body_pretty(self, obj: PaymentEvent) -> str:
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html('<pre class="jauge-raw">{}</pre>', text)

    @admin.display(description=_("en-têtes"))
    def headers_pretty(self, obj: PaymentEvent) -> str:
        return format_html('<pre class="jauge-raw">{}</pre>', json.dumps(obj.headers, indent=2, ensure_ascii=False))

    @admin.action(description=_("Relancer les événements en échec sélectionnés"), permissions=["retry"])
    def retry_events(self, request, queryset):
        retried = sum(
            backoffice.payment_event_staff_retry(actor=request.user, event_id=pk)
            for pk in queryset.values_list("pk", flat=True)
        )
        skipped = queryset.count() - retried
        self.message_user(request, gettext("%(n)d événement(s) relancé(s).") % {"n": retried}, messages.SUCCESS)
        if skipped:
            self.message_user(
                request, gettext("%(n)d ignoré(s) : seuls les événements en échec se relancent.") % {"n": skipped},
                messages.WARNING,
            )


# --- Read-only books ----------------------------------------------------------------------

@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "campaign", "donation", "kind", "delta_display", "note")
    list_filter = ("campaign", "kind")
    search_fields = ("donation__reference", "donation__external_id", "note")
    list_select_related = ("campaign", "donation")

    @admin.display(description=_("mouvement"), ordering="delta_minor")
    def delta_display(self, obj: LedgerEntry) -> str:
        return money_display(obj.delta_minor, obj.campaign.currency)


@admin.register(CampaignTotal)
class CampaignTotalAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "total_display", "pending_display", "donation_count", "donor_count", "version",
                    "updated_at")
    list_select_related = ("campaign",)

    @admin.display(description=_("total"))
    def total_display(self, obj: CampaignTotal) -> str:
        return money_display(obj.total_minor, obj.campaign.currency)

    @admin.display(description=_("en attente"))
    def pending_display(self, obj: CampaignTotal) -> str:
        return money_display(obj.pending_minor, obj.campaign.currency)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_username", "action", "amount_display", "campaign", "donation", "reason")
    list_filter = ("action", "actor_username", "campaign")
    search_fields = ("actor_username", "reason", "donation__reference")
    list_select_related = ("campaign", "donation")
    date_hierarchy = "at"

    @admin.display(description=_("montant"), ordering="amount_minor")
    def amount_display(self, obj: AuditLog) -> str:
        return money_display(obj.amount_minor, obj.currency) if obj.currency else "—"
