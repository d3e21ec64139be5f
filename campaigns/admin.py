"""Admin registrations (the editors' panel grows from here)."""

from django.contrib import admin

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "status", "starts_at", "ends_at")
    prepopulated_fields = {"slug": ("title",)}


@admin.register(Donation)
class DonationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "campaign", "source", "status", "amount_minor", "created_at")
    list_filter = ("campaign", "status", "source")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "campaign", "donation", "kind", "delta_minor")


@admin.register(CampaignTotal)
class CampaignTotalAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "total_minor", "donation_count", "donor_count", "version")


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "provider", "event_type", "status", "attempts", "received_at")
    list_filter = ("status", "provider")
