"""Bank statements: accounts, saved CSV profiles, imports and their lines (stored first, matched after).

Imported by campaigns/models.py (the app's model registry); workflows live in
services/statements.py (import) and services/statement_matching.py (matching, review).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

STATEMENT_FORMATS = [
    ("camt053", "camt.053 (ISO 20022)"),
    ("cfonb120", "CFONB 120"),
    ("mt940", "MT940"),
    ("csv", "CSV"),
]


class BankAccount(models.Model):
    """The account a statement belongs to: every line belongs to one (part of its dedup key)."""

    label = models.CharField(_("libellé"), max_length=200, blank=True)
    # IBAN without spaces, or the bank's own account number; "" for files that name none.
    number = models.CharField(_("IBAN ou numéro de compte"), max_length=64, unique=True, blank=True)

    class Meta:
        verbose_name = _("compte bancaire")
        verbose_name_plural = _("comptes bancaires")
        ordering = ["label", "number"]

    def __str__(self) -> str:
        return self.label or self.number or str(_("compte sans numéro"))


class CsvProfile(models.Model):
    """How one bank's CSV export reads: saved by an editor, chosen at upload."""

    class Sign(models.TextChoices):
        SIGNED = "signed", _("Montant signé (négatif = débit)")
        INVERTED = "inverted", _("Montant signé inversé (positif = débit)")
        COLUMNS = "columns", _("Colonnes Débit et Crédit séparées")

    name = models.CharField(_("nom"), max_length=100, unique=True)
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="csv_profiles",
        verbose_name=_("compte bancaire"),
    )
    encoding = models.CharField(_("encodage"), max_length=32, default="utf-8-sig")
    delimiter = models.CharField(_("séparateur"), max_length=1, default=";")
    decimal_separator = models.CharField(_("séparateur décimal"), max_length=1, default=",")
    thousands_separator = models.CharField(_("séparateur de milliers"), max_length=1, blank=True)
    date_format = models.CharField(_("format de date"), max_length=32, default="%d/%m/%Y")
    skip_rows = models.PositiveSmallIntegerField(_("lignes d'en-tête à ignorer"), default=1)
    date_column = models.CharField(_("colonne date"), max_length=100)
    amount_column = models.CharField(_("colonne montant"), max_length=100, blank=True)
    debit_column = models.CharField(_("colonne débit"), max_length=100, blank=True)
    credit_column = models.CharField(_("colonne crédit"), max_length=100, blank=True)
    label_column = models.CharField(_("colonne libellé"), max_length=100, blank=True)
    payer_column = models.CharField(_("colonne émetteur"), max_length=100, blank=True)
    reference_column = models.CharField(_("colonne référence bancaire"), max_length=100, blank=True)
    currency = models.CharField(_("devise"), max_length=3, default="EUR")
    sign_convention = models.CharField(_("convention de signe"), max_length=10, choices=Sign.choices,
                                       default=Sign.SIGNED)

    class Meta:
        verbose_name = _("profil CSV")
        verbose_name_plural = _("profils CSV")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StatementImport(models.Model):
    """One uploaded file: stored whole (or refused whole), then matched by a worker."""

    class Status(models.TextChoices):
        STORED = "stored", _("Enregistré")
        MATCHING = "matching", _("Rapprochement en cours")
        DONE = "done", _("Terminé")
        FAILED = "failed", _("Refusé")
        UNDONE = "undone", _("Annulé")

    file_name = models.CharField(_("fichier"), max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField(_("taille (octets)"), default=0)
    format = models.CharField(_("format"), max_length=10, choices=STATEMENT_FORMATS)
    profile = models.ForeignKey(CsvProfile, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                verbose_name=_("profil CSV"))
    uploaded_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                    verbose_name=_("importé par"))
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.STORED)
    error = models.TextField(_("erreur"), blank=True)
    # Counts: lines read from the file, lines new to Jauge (the others were imported before).
    lines_read = models.PositiveIntegerField(_("lignes lues"), default=0)
    lines_new = models.PositiveIntegerField(_("lignes nouvelles"), default=0)
    # The live bar: lines the matcher finished, moved once per batch.
    lines_processed = models.PositiveIntegerField(_("lignes traitées"), default=0)
    created_at = models.DateTimeField(_("importé le"), default=timezone.now)
    stored_at = models.DateTimeField(null=True, blank=True)
    matching_started_at = models.DateTimeField(null=True, blank=True)
    # Last time a matcher finished a batch: the sweeper leaves alone an import that moves.
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import de relevé")
        verbose_name_plural = _("imports de relevés")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"


class StatementLine(models.Model):
    """One booked movement, raw text kept. Belongs to the import that first stored it."""

    class Direction(models.TextChoices):
        CREDIT = "credit", _("Crédit")
        DEBIT = "debit", _("Débit")

    class Outcome(models.TextChoices):
        PENDING = "pending", _("À rapprocher")
        MATCHED = "matched", _("Rapproché")
        DUPLICATE = "duplicate", _("Doublon (déjà payé)")
        REVIEW = "review", _("À examiner")
        DEBIT = "debit", _("Débit")
        DISMISSED = "dismissed", _("Écarté")

    class MatchedBy(models.TextChoices):
        REFERENCE = "reference", _("Référence")
        SUGGESTION = "suggestion", _("Suggestion")
        EDITOR = "editor", _("Rédaction")

    statement_import = models.ForeignKey(StatementImport, on_delete=models.PROTECT, related_name="lines")
    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="lines")
    # sha256 of account, booking date, signed amount, currency, bank reference and normalised
    # text; `occurrence` numbers identical lines within one file (two equal gifts both count).
    dedup_key = models.CharField(max_length=64)
    occurrence = models.PositiveIntegerField(default=0)
    source_line = models.PositiveIntegerField(_("ligne du fichier"), null=True, blank=True)
    booking_date = models.DateField(_("date de comptabilisation"))
    value_date = models.DateField(_("date de valeur"), null=True, blank=True)
    direction = models.CharField(_("sens"), max_length=6, choices=Direction.choices)
    amount_minor = models.BigIntegerField(_("montant (centimes)"))
    currency = models.CharField(_("devise"), max_length=3)
    bank_reference = models.CharField(_("référence bancaire"), max_length=255, blank=True)
    payer_name = models.CharField(_("émetteur"), max_length=255, blank=True)
    payer_iban = models.CharField(_("IBAN de l'émetteur"), max_length=64, blank=True)
    text = models.TextField(_("libellé"), blank=True)
    raw = models.TextField(_("texte brut"), blank=True)
    outcome = models.CharField(_("résultat"), max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    matched_by = models.CharField(_("rapproché par"), max_length=10, choices=MatchedBy.choices, blank=True)
    reason = models.CharField(_("motif"), max_length=500, blank=True)
    # [{"kind": "pledge"|"donor"|"refund", "donation_id", "score", "label"}], best first.
    suggestions = models.JSONField(_("suggestions"), default=list, blank=True)
    donation = models.ForeignKey(
        "campaigns.Donation", on_delete=models.PROTECT, null=True, blank=True, related_name="statement_lines",
        verbose_name=_("don"),
    )
    decided_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("ligne de relevé")
        verbose_name_plural = _("lignes de relevés")
        ordering = ["statement_import", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dedup_key", "occurrence"], name="statement_line_dedup"),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="statement_line_amount_not_negative"),
        ]
        indexes = [
            # What the matcher and the sweeper look for: the few lines still pending.
            models.Index(fields=["statement_import", "id"], name="statement_line_pending",
                         condition=Q(outcome="pending")),
            models.Index(fields=["outcome", "statement_import"]),
            models.Index(fields=["payer_iban"], name="statement_line_payer_iban", condition=~Q(payer_iban="")),
        ]

    def __str__(self) -> str:
        return f"{self.booking_date} {self.direction} {self.amount_minor} {self.currency}"
