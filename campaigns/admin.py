"""The editors' panel: the stock admin, extended.

Money never changes here directly: amounts are read-only once created, and manual entries,
refunds and corrections go through the ledger service (via services.backoffice), each with
an audit entry. Permissions come from the Editors and Finance groups (migration 0003).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.admin_forms import CampaignAdminForm, CorrectionForm, ErasureForm, ManualDonationForm, RefundForm
from campaigns.models import AuditLog, Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import backoffice, gdpr
from campaigns.services.audit import ReasonRequired
from campaigns.services.ledger import LedgerError
from campaigns.views import embed
from campaigns.views.export import donations_csv_response

admin.site.site_header = _("Jauge : administration")
admin.site.site_title = "Jauge"
admin.site.index_title = _("Campagnes et dons")


def _money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "—"
    return money.format_money(amount_minor, currency, (get_language() or "fr")[:2])


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Campaigns ----------------------------------------------------------------------------

def embed_snippets(campaign: Campaign) -> list[tuple[str, str, str]]:
    """(id, label, code) of the four ways to put the banner on a page (the public contract)."""
    base = f"{settings.PUBLIC_URL}/embed/{campaign.slug}"
    title = escape(campaign.title)
    return [
        ("script", gettext("Script (recommandé)"), f'<script src="{base}.js" async></script>'),
        (
            "iframe",
            gettext("Iframe"),
            # The relay line (anywhere on the page) lets the frame thank a reader who has just given:
            # the marker lives in the publication's localStorage, which the frame cannot read.
            f'<iframe src="{base}/frame/" title="{title}" style="width:100%;height:140px;border:0" '
            f'loading="lazy"></iframe>\n'
            f'<script src="{base}.js" data-mode="relay" async></script>',
        ),
        (
            "htmx",
            gettext("htmx (hx-get)"),
            # The fragment replaces this div and then polls itself (and stops once the campaign
            # closes): the div must not poll too. htmx 2 refuses other origins unless allowed.
            f"<meta name=\"htmx-config\" content='{{\"selfRequestsOnly\": false}}'>\n"
            f'<link rel="stylesheet" href="{settings.PUBLIC_URL}/static/embed/jauge-embed.css">\n'
            f'<div hx-get="{base}/" hx-trigger="load" hx-swap="outerHTML"></div>',
        ),
        ("svg", gettext("Image SVG (newsletters, RSS)"), f'<img src="{base}.svg" alt="{title}">'),
    ]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ("title", "slug", "status", "starts_at", "ends_at", "progress_bar", "total_display")
    list_filter = ("status", "featured")
    list_select_related = ("totals",)
    search_fields = ("title", "slug")
    readonly_fields = ("preview", "snippets")
    fieldsets = (
        (None, {"fields": ("title", "slug", "status", "featured", "locale", "starts_at", "ends_at")}),
        (_("Objectif et montants"), {
            "fields": ("currency", "goal_minor", "preset_amounts_minor", "min_amount_minor", "max_amount_minor",
                       "pending_cap_percent"),
        }),
        (_("Texte et apparence"), {
            "fields": ("appeal", "color_primary", "color_background", "color_text", "font_family", "donor_wall"),
        }),
        (_("Intégration"), {
            "fields": ("allowed_origins", "poll_interval_seconds", "thank_days", "preview", "snippets"),
        }),
    )

    class Media:
        js = ("campaigns/admin.js",)
        css = {"all": ("campaigns/admin.css",)}

    # Read-only viewers (Finance) see money formatted, not the stored cents.
    money_displays = {"goal_minor": "goal_display", "min_amount_minor": "min_display",
                      "max_amount_minor": "max_display", "preset_amounts_minor": "presets_display"}

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": tuple(self.money_displays.get(f, f) for f in options["fields"])})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return (*readonly, *self.money_displays.values())
        return readonly

    @admin.display(description=_("objectif"))
    def goal_display(self, obj: Campaign) -> str:
        return _money(obj.goal_minor, obj.currency)

    @admin.display(description=_("don minimum"))
    def min_display(self, obj: Campaign) -> str:
        return _money(obj.min_amount_minor, obj.currency)

    @admin.display(description=_("don maximum"))
    def max_display(self, obj: Campaign) -> str:
        return _money(obj.max_amount_minor, obj.currency)

    @admin.display(description=_("montants proposés"))
    def presets_display(self, obj: Campaign) -> str:
        return " · ".join(_money(amount, obj.currency) for amount in obj.preset_amounts_minor or [])

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else {"slug": ("title",)}

    def save_model(self, request, obj, form, change):
        backoffice.campaign_save(campaign=obj)

    @admin.display(description=_("progression"))
    def progress_bar(self, obj: Campaign) -> str:
        total = getattr(obj, "totals", None)
        percent = money.percent(total.total_minor if total else 0, obj.goal_minor)
        return format_html(
            '<span class="jauge-admin-bar" title="{} %"><span style="width:{}%"></span></span> {} %',
            f"{percent:.0f}", f"{min(percent, 100):.1f}", f"{percent:.0f}",
        )

    @admin.display(description=_("total"))
    def total_display(self, obj: Campaign) -> str:
        total = getattr(obj, "totals", None)
        return format_html(
            "{} / {}", _money(total.total_minor if total else 0, obj.currency), _money(obj.goal_minor, obj.currency)
        )

    @admin.display(description=_("aperçu du bandeau"))
    def preview(self, obj: Campaign) -> str:
        if not obj.pk:
            return gettext("Enregistrez la campagne pour voir l'aperçu.")
        return format_html(
            '<div class="jauge-preview"><iframe id="jauge-preview" src="/embed/{}/frame/?preview={}" title="{}" '
            'loading="lazy"></iframe><button type="button" class="button" data-jauge-reload="jauge-preview">{}'
            "</button></div>",
            obj.slug, embed.preview_token(obj.slug), gettext("Aperçu du bandeau"), gettext("Recharger l'aperçu"),
        )

    @admin.display(description=_("codes d'intégration"))
    def snippets(self, obj: Campaign) -> str:
        if not obj.pk:
            return gettext("Enregistrez la campagne pour obtenir les codes d'intégration.")
        return format_html_join(
            "",
            '<div class="jauge-snippet"><label for="snippet-{0}">{1}</label>'
            '<textarea id="snippet-{0}" rows="2" readonly>{2}</textarea>'
            '<button type="button" class="button" data-jauge-copy="snippet-{0}" data-done="{3}" data-failed="{4}">'
            "{5}</button></div>",
            (
                (key, label, code, gettext("Copié !"), gettext("Copie impossible : sélectionnez le texte"),
                 gettext("Copier"))
                for key, label, code in embed_snippets(obj)
            ),
        )


# --- Donations ----------------------------------------------------------------------------

class LedgerInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "delta_display", "note")
    readonly_fields = fields
    verbose_name_plural = _("écritures du grand livre")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("mouvement"))
    def delta_display(self, obj: LedgerEntry) -> str:
        return _money(obj.delta_minor, obj.donation.currency)


class PledgeConfirmedFilter(admin.SimpleListFilter):
    """Bank-transfer promises by whether their donor confirmed them (only those are public)."""

    title = _("promesse de virement")
    parameter_name = "pledge"

    def lookups(self, request, model_admin):
        return (("unconfirmed", _("non confirmée par le donateur")), ("confirmed", _("confirmée par le donateur")))

    def queryset(self, request, queryset):
        pledges = queryset.filter(source=Donation.Source.BANK, status=Donation.Status.PENDING)
        if self.value() == "unconfirmed":
            return pledges.filter(pledge_confirmed_at__isnull=True)
        if self.value() == "confirmed":
            return pledges.filter(pledge_confirmed_at__isnull=False)
        return queryset


@admin.register(Donation)
class DonationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "campaign", "source", "status", "amount_display", "net_display", "donor",
                    "pledge_confirmed", "created_at")
    list_filter = ("campaign", "status", "source", PledgeConfirmedFilter, ("created_at", admin.DateFieldListFilter),
                   "frequency")
    actions = ("void_pledges",)
    search_fields = ("reference", "donor_name", "donor_email", "external_id")
    list_select_related = ("campaign",)
    date_hierarchy = "created_at"
    inlines = (LedgerInline,)
    # Only what is not money is editable; money changes through the actions below.
    editable_fields = ("donor_name", "anonymous", "message")
    change_list_template = "admin/campaigns/donation/change_list.html"
    change_form_template = "admin/campaigns/donation/change_form.html"

    def get_fields(self, request, obj=None):
        return (
            "campaign", "reference", "source", "external_id", "status", "amount_display", "refunded_display",
            "net_display", "frequency", "donor_name", "donor_email", "anonymous", "message", "article_url", "locale",
            "occurred_at", "confirmed_at", "created_at", "pledge_confirmed_at", "receipt_sent_at", "receipt_error",
        )

    def get_readonly_fields(self, request, obj=None):
        return tuple(f for f in self.get_fields(request, obj) if f not in self.editable_fields)

    def has_add_permission(self, request):
        return False  # offline gifts: the manual entry view, through the ledger

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("montant"), ordering="amount_minor")
    def amount_display(self, obj: Donation) -> str:
        return _money(obj.amount_minor, obj.currency)

    @admin.display(description=_("promesse confirmée"), boolean=True)
    def pledge_confirmed(self, obj: Donation) -> bool | None:
        if obj.source != Donation.Source.BANK or obj.status != Donation.Status.PENDING:
            return None
        return obj.pledge_confirmed_at is not None

    @admin.display(description=_("remboursé"))
    def refunded_display(self, obj: Donation) -> str:
        return _money(obj.refunded_minor, obj.currency)

    @admin.display(description=_("net"))
    def net_display(self, obj: Donation) -> str:
        return _money(obj.net_minor, obj.currency)

    @admin.display(description=_("donateur"))
    def donor(self, obj: Donation) -> str:
        name = obj.donor_name or obj.donor_email
        return f"{name} ({gettext('anonyme')})" if obj.anonymous and name else name

    def has_void_permission(self, request) -> bool:
        return request.user.has_perm("campaigns.change_donation")

    @admin.action(description=_("Annuler les promesses sélectionnées (en attente)"), permissions=["void"])
    def void_pledges(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        voided = backoffice.pledges_void(
            actor=request.user, donation_ids=ids,
            reason=gettext("Annulation groupée depuis l'administration (%(n)d sélectionnée(s))") % {"n": len(ids)},
        )
        self.message_user(request, gettext("%(n)d promesse(s) annulée(s).") % {"n": voided}, messages.SUCCESS)
        if len(ids) > voided:
            self.message_user(request, gettext("%(n)d ignorée(s) : seules les promesses en attente s'annulent.")
                              % {"n": len(ids) - voided}, messages.WARNING)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("manual/", view(self.manual_entry_view), name="campaigns_donation_manual"),
            path("export.csv", view(self.export_view), name="campaigns_donation_export"),
            path("<int:pk>/refund/", view(self.refund_view), name="campaigns_donation_refund"),
            path("<int:pk>/correct/", view(self.correct_view), name="campaigns_donation_correct"),
            path("<int:pk>/erase/", view(self.erase_view), name="campaigns_donation_erase"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            # The ledger's own sum for the filtered set (corrections included).
            rows = (
                LedgerEntry.objects.filter(donation__in=context["cl"].queryset.values("pk"))
                .values("donation__currency")
                .annotate(net=Sum("delta_minor"))
                .order_by("donation__currency")
            )
            context["filtered_totals"] = [_money(row["net"], row["donation__currency"]) for row in rows]
            context["filtered_count"] = context["cl"].result_count
            context["export_query"] = request.GET.urlencode()
        return response

    # Custom views: each checks its own permission, then calls one service.
    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(f"campaigns.{permission}"):
            raise PermissionDenied

    def _render(self, request, title: str, form, donation: Donation | None = None, submit: str = "") -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "donation": donation,
            "submit_label": submit or gettext("Enregistrer"),
            "net_display": _money(donation.net_minor, donation.currency) if donation else "",
        }
        return TemplateResponse(request, "admin/campaigns/donation/action_form.html", context)

    def _back(self, donation: Donation) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:campaigns_donation_change", args=[donation.pk]))

    def manual_entry_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, "record_manual_donation")
        form = ManualDonationForm(request.POST or None, initial={"campaign": request.GET.get("campaign")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                donation = backoffice.donation_manual_enter(
                    actor=request.user,
                    campaign_id=data["campaign"].pk,
                    method=data["method"],
                    amount_minor=data["amount_minor"],
                    received_at=data["received_at"],
                    number=data["number"],
                    donor_name=data["donor_name"],
                    donor_email=data["donor_email"],
                    anonymous=data["anonymous"],
                    note=data["note"],
                    entry_key=data["entry_key"],
                    pledge_reference=data["pledge_reference"],
                )
            except backoffice.DuplicateEntry as exc:
                if data["number"] and not data["pledge_reference"]:
                    form.add_error("number", gettext("« %(code)s » est déjà enregistré : %(donation)s.") % {
                        "code": data["number"], "donation": exc.donation})
                else:
                    form.add_error(None, gettext("Déjà enregistré : %(donation)s.") % {"donation": exc.donation})
            except LedgerError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, gettext("Don enregistré : %(amount)s.") % {
                    "amount": _money(donation.amount_minor, donation.currency)})
                return self._back(donation)
        return self._render(request, gettext("Saisir un don hors ligne"), form)

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "refund_donation")
        donation = get_object_or_404(Donation, pk=pk)
        form = RefundForm(request.POST or None, currency=donation.currency)
        if request.method == "POST" and form.is_valid():
            try:
                applied = backoffice.donation_staff_refund(
                    actor=request.user, donation_id=donation.pk,
                    amount_minor=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                    request_key=form.cleaned_data["request_key"],
                )
            except (LedgerError, ReasonRequired) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, gettext("Remboursé : %(amount)s.") % {
                    "amount": _money(applied, donation.currency)})
                return self._back(donation)
        return self._render(request, gettext("Rembourser le don %(don)s") % {"don": donation}, form, donation,
                            gettext("Rembourser"))

    def correct_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "correct_donation")
        donation = get_object_or_404(Donation, pk=pk)
        form = CorrectionForm(request.POST or None, currency=donation.currency)
        if request.method == "POST" and form.is_valid():
            try:
                backoffice.donation_staff_correct(
                    actor=request.user, donation_id=donation.pk,
                    delta_minor=form.cleaned_data["delta"], reason=form.cleaned_data["reason"],
                )
            except (LedgerError, ReasonRequired) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, gettext("Correction enregistrée au grand livre."))
                return self._back(donation)
        return self._render(request, gettext("Corriger le don %(don)s") % {"don": donation}, form, donation,
                            gettext("Enregistrer la correction"))

    def erase_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "erase_donor_data")
        donation = get_object_or_404(Donation, pk=pk)
        form = ErasureForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = gdpr.donor_erase(actor=request.user, donation_id=donation.pk,
                                          reason=form.cleaned_data["reason"])
            except ReasonRequired as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, gettext(
                    "Données personnelles effacées : %(donations)d don(s), %(events)d événement(s) bruts."
                ) % {"donations": len(result.donation_ids), "events": len(result.event_ids)})
                return self._back(donation)
        return self._render(request, gettext("Effacer les données personnelles (RGPD) — %(don)s") % {
            "don": donation}, form, donation, gettext("Effacer"))

    def export_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, "export_donations")
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(gettext("Filtre inconnu : rien n'a été exporté."))
        backoffice.donations_export_record(actor=request.user, filters=request.GET.urlencode())
        return donations_csv_response(queryset=queryset)


# --- Payment events -----------------------------------------------------------------------

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
        return _money(obj.delta_minor, obj.campaign.currency)


@admin.register(CampaignTotal)
class CampaignTotalAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "total_display", "pending_display", "donation_count", "donor_count", "version",
                    "updated_at")
    list_select_related = ("campaign",)

    @admin.display(description=_("total"))
    def total_display(self, obj: CampaignTotal) -> str:
        return _money(obj.total_minor, obj.campaign.currency)

    @admin.display(description=_("en attente"))
    def pending_display(self, obj: CampaignTotal) -> str:
        return _money(obj.pending_minor, obj.campaign.currency)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_username", "action", "amount_display", "campaign", "donation", "reason")
    list_filter = ("action", "actor_username", "campaign")
    search_fields = ("actor_username", "reason", "donation__reference")
    list_select_related = ("campaign", "donation")
    date_hierarchy = "at"

    @admin.display(description=_("montant"), ordering="amount_minor")
    def amount_display(self, obj: AuditLog) -> str:
        return _money(obj.amount_minor, obj.currency) if obj.currency else "—"

from campaigns import admin_statements  # noqa: E402, F401  (registers the statement admin)
