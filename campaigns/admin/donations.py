"""Donations in the admin: money changes only through the actions here (manual entry, refund,
correction, erasure, voided pledges), each one service call with its audit entry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin.common import money_display
from campaigns.admin_forms import CorrectionForm, ErasureForm, ManualDonationForm, RefundForm
from campaigns.models import Donation, LedgerEntry
from campaigns.services import backoffice, gdpr
from campaigns.services.audit import ReasonRequired
from campaigns.services.ledger import LedgerError
from campaigns.views.export import donations_csv_response


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
        return money_display(obj.delta_minor, obj.donation.currency)


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
    list_display = ("__str__", "campaign", "source", "status", "amount_display", "balance_display", "donor",
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
            "balance_display", "matched_display", "frequency", "subscription", "donor_name", "donor_email",
            "anonymous", "message",
            "article_url", "locale", "occurred_at", "confirmed_at", "created_at", "pledge_confirmed_at",
            "receipt_sent_at", "receipt_error",
        )

    def get_readonly_fields(self, request, obj=None):
        return tuple(f for f in self.get_fields(request, obj) if f not in self.editable_fields)

    def has_add_permission(self, request):
        return False  # offline gifts: the manual entry view, through the ledger

    def has_delete_permission(self, request, obj=None):
        return False

    # A sponsor's money added to this gift (matching gifts), net of what its refunds took back.
    @admin.display(description=_("abondement du mécène"))
    def matched_display(self, obj: Donation) -> str:
        return money_display(obj.matched_minor, obj.currency) if obj.matched_minor else "—"

    @admin.display(description=_("montant"), ordering="amount_minor")
    def amount_display(self, obj: Donation) -> str:
        return money_display(obj.amount_minor, obj.currency)

    @admin.display(description=_("promesse confirmée"), boolean=True)
    def pledge_confirmed(self, obj: Donation) -> bool | None:
        if obj.source != Donation.Source.BANK or obj.status != Donation.Status.PENDING:
            return None
        return obj.pledge_confirmed_at is not None

    @admin.display(description=_("remboursé"))
    def refunded_display(self, obj: Donation) -> str:
        return money_display(obj.refunded_minor, obj.currency)

    # What the ledger holds for this gift (refunds and corrections included), as the totals count it.
    @admin.display(description=_("net"), ordering="balance_minor")
    def balance_display(self, obj: Donation) -> str:
        return money_display(obj.balance_minor, obj.currency)

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
            context["filtered_totals"] = [money_display(row["net"], row["donation__currency"]) for row in rows]
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
            "balance_display": money_display(donation.balance_minor, donation.currency) if donation else "",
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
                    "amount": money_display(donation.amount_minor, donation.currency)})
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
                    "amount": money_display(applied, donation.currency)})
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
