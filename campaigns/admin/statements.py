"""Bank statements in the admin (Finance role): upload, live progress, summary, review queue, undo.

Every view checks `campaigns.import_statement`, then calls one service; money moves only through
services.statement_review (ledger + audit in one transaction).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns import references
from campaigns.bank.records import StatementError
from campaigns.models import BankAccount, Campaign, CsvProfile, Donation, StatementImport, StatementLine
from campaigns.models.statements import STATEMENT_FORMATS
from campaigns.services import statement_review, statements
from campaigns.services.audit import ReasonRequired
from campaigns.services.ledger import LedgerError

PERMISSION = "campaigns.import_statement"
# Room for the multipart envelope around the file itself.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class StatementUploadForm(forms.Form):
    file = forms.FileField(label=_("relevé"))
    format = forms.ChoiceField(label=_("format"), choices=STATEMENT_FORMATS)
    profile = forms.ModelChoiceField(label=_("profil CSV"), queryset=CsvProfile.objects.all(), required=False,
                                     help_text=_("Obligatoire pour un fichier CSV."))

    def clean(self):
        data = super().clean()
        if data.get("format") == "csv" and not data.get("profile"):
            self.add_error("profile", gettext("Choisissez le profil CSV de ce compte."))
        return data


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = ("__str__", "number")
    search_fields = ("label", "number")


@admin.register(CsvProfile)
class CsvProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "bank_account", "encoding", "delimiter", "decimal_separator", "date_format")


@admin.register(StatementLine)
class StatementLineAdmin(admin.ModelAdmin):
    list_display = ("booking_date", "direction", "amount_minor", "currency", "payer_name", "outcome", "matched_by",
                    "donation", "statement_import")
    list_filter = ("outcome", "direction", "matched_by", "bank_account")
    search_fields = ("text", "payer_name", "payer_iban", "bank_reference", "donation__reference")
    list_select_related = ("donation", "statement_import")
    readonly_fields = [f.name for f in StatementLine._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StatementImport)
class StatementImportAdmin(admin.ModelAdmin):
    list_display = ("file_name", "format", "status", "lines_read", "lines_new", "lines_processed", "uploaded_by",
                    "created_at")
    list_filter = ("status", "format")
    change_list_template = "admin/campaigns/statements/change_list.html"

    def has_add_permission(self, request):
        return False  # the upload view: parse, store, match

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="campaigns_statementimport_upload"),
            path("review/", view(self.review_view), name="campaigns_statementimport_review"),
            path("line/<int:pk>/decide/", view(require_POST(self.decide_view)),
                 name="campaigns_statementimport_decide"),
            path("<int:pk>/summary/", view(self.summary_view), name="campaigns_statementimport_summary"),
            path("<int:pk>/progress/", view(self.progress_view), name="campaigns_statementimport_progress"),
            path("<int:pk>/undo/", view(require_POST(self.undo_view)), name="campaigns_statementimport_undo"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:campaigns_statementimport_summary", args=[object_id]))

    def _require(self, request: HttpRequest) -> None:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        if request.method == "POST":
            # Refused from the header, before Django reads (or spools) a byte of the body.
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > settings.STATEMENT_MAX_BYTES + UPLOAD_OVERHEAD_BYTES:
                response = TemplateResponse(request, "admin/campaigns/statements/upload.html", self._context(
                    request, gettext("Importer un relevé bancaire"), form=StatementUploadForm(),
                    error=gettext("Fichier trop volumineux : %(size)d octets, limite %(limit)d (STATEMENT_MAX_BYTES).")
                    % {"size": length, "limit": settings.STATEMENT_MAX_BYTES}), status=413)
                response["Connection"] = "close"
                return response
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        error = ""
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                statements.statement_size_check(size=upload.size)
                result = statements.statement_import(
                    data=upload.read(), file_name=upload.name, format=form.cleaned_data["format"],
                    profile_id=form.cleaned_data["profile"].pk if form.cleaned_data["profile"] else None,
                    actor=request.user,
                )
            except StatementError as exc:
                error = gettext("Fichier refusé, rien n'a été enregistré : %(reason)s") % {"reason": exc}
            else:
                return HttpResponseRedirect(reverse("admin:campaigns_statementimport_summary",
                                                    args=[result.statement_import.pk]))
        return TemplateResponse(request, "admin/campaigns/statements/upload.html", self._context(
            request, gettext("Importer un relevé bancaire"), form=form, error=error), status=400 if error else 200)

    def summary_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request)
        summary = statements.statement_import_summary(import_id=pk)
        return TemplateResponse(request, "admin/campaigns/statements/summary.html", self._context(
            request, str(summary["import"]), summary=summary))

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The live bar alone (htmx polls it; it stops polling once the import is finished)."""
        self._require(request)
        summary = statements.statement_import_summary(import_id=pk)
        response = TemplateResponse(request, "admin/campaigns/statements/_progress.html", {"summary": summary})
        response["Vary"] = "HX-Request"
        return response

    def review_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        lines = (StatementLine.objects.filter(outcome=StatementLine.Outcome.REVIEW)
                 .select_related("statement_import").order_by("booking_date", "id"))
        import_id = request.GET.get("import")
        if import_id and import_id.isdigit():
            lines = lines.filter(statement_import_id=int(import_id))
        return TemplateResponse(request, "admin/campaigns/statements/review.html", self._context(
            request, gettext("Lignes de relevé à examiner"), lines=lines[:200], total=lines.count(),
            campaigns=Campaign.objects.order_by("-starts_at")))

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request)
        line = get_object_or_404(StatementLine, pk=pk)
        action, reason = request.POST.get("action", ""), request.POST.get("reason", "")
        try:
            if action == "assign":
                donation_id = request.POST.get("donation", "")
                if not donation_id.isdigit():  # typed: a pledge's reference
                    reference = references.reference_normalize(request.POST.get("reference", ""))
                    donation_id = get_object_or_404(Donation, reference=reference).pk
                statement_review.statement_line_assign(actor=request.user, line_id=line.pk,
                                                       donation_id=int(donation_id), reason=reason)
            elif action == "gift":
                donor = request.POST.get("donor") or ""
                statement_review.statement_line_create_gift(
                    actor=request.user, line_id=line.pk, campaign_id=int(request.POST["campaign"]),
                    donor_of_donation_id=int(donor) if donor.isdigit() else None,
                    anonymous=request.POST.get("anonymous") == "on", reason=reason)
            elif action == "dismiss":
                statement_review.statement_line_dismiss(actor=request.user, line_id=line.pk, reason=reason)
            elif action == "refund":
                statement_review.statement_line_refund(actor=request.user, line_id=line.pk, reason=reason)
            elif action == "undo":
                statement_review.statement_line_undo(actor=request.user, line_id=line.pk, reason=reason)
            else:
                raise LedgerError(f"unknown action {action!r}")
        except (LedgerError, ReasonRequired, KeyError, ValueError, references.InvalidReference) as exc:
            messages.error(request, gettext("Ligne %(line)s : %(error)s") % {"line": line.pk, "error": exc})
        else:
            messages.success(request, gettext("Ligne %(line)s : décision enregistrée.") % {"line": line.pk})
        return HttpResponseRedirect(request.POST.get("next") or reverse("admin:campaigns_statementimport_review"))

    def undo_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request)
        try:
            reversed_minor = statement_review.statement_import_undo(actor=request.user, import_id=pk,
                                                                    reason=request.POST.get("reason", ""))
        except ReasonRequired as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Import annulé : %(amount)d centimes sortis du grand livre.")
                             % {"amount": reversed_minor})
        return HttpResponseRedirect(reverse("admin:campaigns_statementimport_summary", args=[pk]))
