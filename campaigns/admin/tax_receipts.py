"""French tax receipts in the admin (Finance): the organisation's settings, the receipts (PDF,
cancel, issue for a gift) and the bulk yearly run with its live progress bar.

Every write view checks `campaigns.issue_tax_receipt` and calls one service.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns import references
from campaigns.admin.common import ReadOnlyAdmin, money_display
from campaigns.models import Donation, TaxReceipt, TaxReceiptRun, TaxReceiptSettings
from campaigns.services import tax_receipts
from campaigns.services.tax_receipts import TaxReceiptError
from campaigns.views.tax_receipts import pdf_response

ISSUE = "campaigns.issue_tax_receipt"


@admin.register(TaxReceiptSettings)
class TaxReceiptSettingsAdmin(admin.ModelAdmin):
    """One row: the list opens it directly."""

    fields = ("enabled", "legal_name", "address", "siren", "purpose", "organisation_type", "legal_basis",
              "reduction_rate_percent", "ceiling_minor", "signatory")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not TaxReceiptSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if TaxReceiptSettings.objects.filter(pk=1).exists():
            return HttpResponseRedirect(reverse("admin:campaigns_taxreceiptsettings_change", args=[1]))
        return HttpResponseRedirect(reverse("admin:campaigns_taxreceiptsettings_add"))

    def save_model(self, request, obj, form, change):
        obj.pk = 1
        super().save_model(request, obj, form, change)


@admin.register(TaxReceipt)
class TaxReceiptAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "donor_name", "amount", "gift_date", "issued_at", "cancelled_at", "pdf_link")
    list_filter = ("year", "kind", ("cancelled_at", admin.EmptyFieldListFilter))
    search_fields = ("number", "donor_name", "donation__reference")
    readonly_fields = [f.name for f in TaxReceipt._meta.fields]
    change_list_template = "admin/campaigns/tax_receipts/change_list.html"
    change_form_template = "admin/campaigns/tax_receipts/change_form.html"

    @admin.display(description=_("montant"))
    def amount(self, obj: TaxReceipt) -> str:
        return money_display(obj.amount_minor, obj.currency)

    @admin.display(description="PDF")
    def pdf_link(self, obj: TaxReceipt) -> str:
        return format_html('<a href="{}">PDF</a>', reverse("admin:campaigns_taxreceipt_pdf", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/pdf/", view(self.pdf_view), name="campaigns_taxreceipt_pdf"),
            path("<int:pk>/cancel/", view(require_POST(self.cancel_view)), name="campaigns_taxreceipt_cancel"),
            path("issue/", view(require_POST(self.issue_view)), name="campaigns_taxreceipt_issue"),
            path("run/", view(self.run_start_view), name="campaigns_taxreceipt_run"),
            path("run/<int:pk>/", view(self.run_view), name="campaigns_taxreceipt_run_detail"),
            path("run/<int:pk>/progress/", view(self.run_progress_view), name="campaigns_taxreceipt_run_progress"),
            *super().get_urls(),
        ]

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(permission):
            raise PermissionDenied

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "campaigns.view_taxreceipt")
        return pdf_response(get_object_or_404(TaxReceipt, pk=pk), attachment=True)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, ISSUE)
        try:
            cancelled = tax_receipts.tax_receipt_cancel(receipt_id=pk, reason=request.POST.get("reason", ""))
        except TaxReceiptError as exc:
            messages.error(request, gettext("Reçu non annulé : %(error)s") % {"error": exc})
        else:
            if cancelled is None:
                messages.warning(request, gettext("Ce reçu était déjà annulé."))
            else:
                messages.success(request, gettext("Reçu %(number)s annulé.") % {"number": cancelled.number})
        return HttpResponseRedirect(reverse("admin:campaigns_taxreceipt_change", args=[pk]))

    def issue_view(self, request: HttpRequest) -> HttpResponse:
        """Issue the receipt of one confirmed one-off gift, named by its reference or id."""
        self._require(request, ISSUE)
        typed = request.POST.get("donation", "").strip()
        donation = None
        if typed.isdigit():
            donation = Donation.objects.filter(pk=int(typed)).first()
        elif typed:
            try:
                donation = Donation.objects.filter(reference=references.reference_normalize(typed)).first()
            except references.InvalidReference:
                donation = None
        if donation is None:
            messages.error(request, gettext("Aucun don « %(typed)s » : indiquez sa référence (JG-…) ou son numéro.")
                           % {"typed": typed[:40]})
            return HttpResponseRedirect(reverse("admin:campaigns_taxreceipt_changelist"))
        try:
            receipt = tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
        except TaxReceiptError as exc:
            messages.error(request, gettext("Aucun reçu émis : %(error)s") % {"error": exc})
            return HttpResponseRedirect(reverse("admin:campaigns_taxreceipt_changelist"))
        messages.success(request, gettext("Reçu %(number)s émis.") % {"number": receipt.number})
        return HttpResponseRedirect(reverse("admin:campaigns_taxreceipt_change", args=[receipt.pk]))

    def run_start_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, ISSUE)
        error = ""
        if request.method == "POST":
            year = request.POST.get("year", "")
            try:
                run = tax_receipts.tax_receipt_run_start(year=int(year), started_by=request.user.get_username())
            except ValueError:
                error = gettext("« %(year)s » n'est pas une année.") % {"year": year[:10]}
            except TaxReceiptError as exc:
                error = str(exc)
            else:
                return HttpResponseRedirect(reverse("admin:campaigns_taxreceipt_run_detail", args=[run.pk]))
        return TemplateResponse(request, "admin/campaigns/tax_receipts/run_start.html", self._context(
            request, gettext("Émettre les reçus fiscaux d'une année"), error=error,
            default_year=timezone.localdate().year - 1, runs=TaxReceiptRun.objects.all()[:20]),
            status=400 if error else 200)

    def run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "campaigns.view_taxreceiptrun")
        progress = tax_receipts.run_progress(run_id=get_object_or_404(TaxReceiptRun, pk=pk).pk)
        return TemplateResponse(request, "admin/campaigns/tax_receipts/run.html", self._context(
            request, gettext("Reçus fiscaux %(year)s") % {"year": progress["run"].year}, progress=progress))

    def run_progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The live bar alone (htmx polls it while the run is going)."""
        self._require(request, "campaigns.view_taxreceiptrun")
        progress = tax_receipts.run_progress(run_id=get_object_or_404(TaxReceiptRun, pk=pk).pk)
        response = TemplateResponse(request, "admin/campaigns/tax_receipts/_run_progress.html",
                                    {"progress": progress})
        response["Vary"] = "HX-Request"
        return response
