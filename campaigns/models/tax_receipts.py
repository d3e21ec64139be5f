"""French tax receipts (*reçus au titre des dons*, CERFA 11580): the organisation's settings, one
gapless number sequence per year, and the receipts themselves.

A receipt is immutable once issued: its number, amount, donor and issuer are a snapshot, and the
PDF is rendered from that snapshot alone. The one change it allows is its cancellation (a
refund or a correction), after which a corrected receipt with a new number may replace it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.base import AppendOnlyModel, AppendOnlyQuerySet
from campaigns.models.campaigns import MAX_AMOUNT_MINOR
from campaigns.models.donations import Donation


class TaxReceiptSettings(models.Model):
    """The organisation that issues the receipts: one row, edited by Finance in the admin
    (a change of address must not wait for a deployment). Each receipt copies what it needs."""

    class LegalBasis(models.TextChoices):
        ART_200 = "200", _("Article 200 du CGI (impôt sur le revenu)")
        ART_200_PRESS = "200-press", _("Article 200 du CGI, entreprise de presse (article 200, 1, g)")
        ART_238_BIS = "238bis", _("Article 238 bis du CGI (impôt sur les sociétés)")
        ART_978 = "978", _("Article 978 du CGI (impôt sur la fortune immobilière)")

    enabled = models.BooleanField(
        _("reçus fiscaux activés"), default=False,
        help_text=_("Active les reçus fiscaux, l'adresse postale sur la page de don et la ligne "
                    "« ne vous coûte que »."),
    )
    legal_name = models.CharField(_("dénomination"), max_length=200, blank=True)
    address = models.TextField(_("adresse"), blank=True)
    siren = models.CharField(_("SIREN ou RNA"), max_length=20, blank=True,
                             help_text=_("SIREN (9 chiffres) ou numéro RNA (W suivi de 9 chiffres)."))
    purpose = models.CharField(_("objet"), max_length=300, blank=True,
                               help_text=_("L'objet de l'organisme, tel qu'il figure sur le reçu."))
    organisation_type = models.CharField(
        _("qualité de l'organisme"), max_length=200, blank=True,
        help_text=_("Par exemple : « Entreprise de presse (article 39 bis A du CGI) »."),
    )
    legal_basis = models.CharField(_("base légale"), max_length=12, choices=LegalBasis.choices,
                                   default=LegalBasis.ART_200_PRESS)
    reduction_rate_percent = models.PositiveSmallIntegerField(
        _("taux de réduction (%)"), default=66, validators=[MaxValueValidator(100)],
    )
    ceiling_minor = models.BigIntegerField(
        _("plafond des dons retenus (centimes)"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_AMOUNT_MINOR)],
        help_text=_("La ligne « ne vous coûte que » applique le taux dans cette limite (vide : sans limite)."),
    )
    signatory = models.CharField(_("signataire (nom et qualité)"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("réglages des reçus fiscaux")
        verbose_name_plural = _("réglages des reçus fiscaux")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="tax_receipt_settings_singleton"),
            models.CheckConstraint(condition=Q(reduction_rate_percent__lte=100), name="tax_receipt_rate_max"),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    def clean(self) -> None:
        if self.enabled:
            missing = [str(self._meta.get_field(name).verbose_name)
                       for name in ("legal_name", "address", "siren", "signatory") if not getattr(self, name).strip()]
            if missing:
                raise ValidationError(_("Pour activer les reçus fiscaux, renseignez : %(fields)s.")
                                      % {"fields": ", ".join(missing)})

    @classmethod
    def current(cls) -> TaxReceiptSettings:
        """The row (an unsaved, disabled one until Finance fills it in)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class TaxReceiptSequence(models.Model):
    """One counter row per year. Its row lock is taken in the transaction that inserts the
    receipt, so a number is used only if that transaction commits: no gap, no double."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("séquence des reçus fiscaux")
        verbose_name_plural = _("séquences des reçus fiscaux")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class TaxReceiptQuerySet(AppendOnlyQuerySet):
    def active(self) -> TaxReceiptQuerySet:
        return self.filter(cancelled_at__isnull=True)

    def cancel(self, *, at, reason: str) -> int:
        """The one change a receipt allows: issued → cancelled, once (conditional UPDATE)."""
        return models.QuerySet.update(self.filter(cancelled_at__isnull=True), cancelled_at=at,
                                      cancel_reason=reason[:300])


class TaxReceipt(AppendOnlyModel):
    class Kind(models.TextChoices):
        GIFT = "gift", _("Don ponctuel")
        YEARLY = "yearly", _("Récapitulatif annuel")

    number = models.CharField(_("numéro"), max_length=16, unique=True)
    year = models.PositiveSmallIntegerField(_("année"))
    sequence = models.PositiveIntegerField(_("rang dans l'année"))
    kind = models.CharField(_("nature"), max_length=8, choices=Kind.choices)
    # The one-off gift it covers (GIFT); YEARLY covers the donor's monthly gifts of `year` (lines).
    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="tax_receipts", verbose_name=_("don"))
    donor_key = models.CharField(max_length=64, db_index=True)
    amount_minor = models.BigIntegerField(_("montant (centimes)"))
    currency = models.CharField(_("devise"), max_length=3, default="EUR")
    gift_date = models.DateField(_("date du don"))  # GIFT: the gift's date; YEARLY: the last instalment's
    payment_method = models.CharField(_("mode de versement"), max_length=16)
    donor_name = models.CharField(_("donateur"), max_length=200)
    donor_address = models.TextField(_("adresse du donateur"))
    issuer = models.JSONField(_("organisme"))
    issued_at = models.DateTimeField(_("émis le"), default=timezone.now)
    replaces = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="replaced_by", verbose_name=_("remplace"))
    cancelled_at = models.DateTimeField(_("annulé le"), null=True, blank=True)
    cancel_reason = models.CharField(_("motif d'annulation"), max_length=300, blank=True)
    run = models.ForeignKey("TaxReceiptRun", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    objects = TaxReceiptQuerySet.as_manager()
    append_only_message = "A tax receipt is immutable once issued: cancel it and issue a corrected one."

    class Meta:
        verbose_name = _("reçu fiscal")
        verbose_name_plural = _("reçus fiscaux")
        ordering = ["-year", "-sequence"]
        permissions = [("issue_tax_receipt", _("Peut émettre et annuler des reçus fiscaux"))]
        constraints = [
            models.UniqueConstraint(fields=["year", "sequence"], name="tax_receipt_sequence_once"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="tax_receipt_amount_positive"),
            # At most one receipt in force per one-off gift, and per donor and year for monthly gifts.
            models.UniqueConstraint(fields=["donation"], condition=Q(cancelled_at__isnull=True, kind="gift"),
                                    name="tax_receipt_one_per_gift"),
            models.UniqueConstraint(fields=["donor_key", "year"], condition=Q(cancelled_at__isnull=True, kind="yearly"),
                                    name="tax_receipt_one_per_donor_year"),
            models.CheckConstraint(condition=Q(kind="yearly") | Q(donation__isnull=False),
                                   name="tax_receipt_gift_has_donation"),
        ]

    def __str__(self) -> str:
        return self.number


class TaxReceiptLine(AppendOnlyModel):
    """Which money a receipt covers: one line per donation (a yearly summary has one per instalment)."""

    receipt = models.ForeignKey(TaxReceipt, on_delete=models.PROTECT, related_name="lines")
    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, related_name="tax_receipt_lines")
    amount_minor = models.BigIntegerField()

    objects = AppendOnlyQuerySet.as_manager()
    append_only_message = "A tax receipt is immutable once issued."

    class Meta:
        constraints = [models.UniqueConstraint(fields=["receipt", "donation"], name="tax_receipt_line_once")]


class TaxReceiptRun(models.Model):
    """A bulk run issuing every receipt of a year (Celery, in batches; re-running it issues only
    what is missing). Its counters move in each batch's transaction: the progress bar reads them."""

    class Status(models.TextChoices):
        RUNNING = "running", _("En cours")
        DONE = "done", _("Terminé")

    year = models.PositiveSmallIntegerField(_("année"))
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.RUNNING)
    to_do = models.PositiveIntegerField(_("à émettre"), default=0)
    issued = models.PositiveIntegerField(_("émis"), default=0)
    skipped = models.PositiveIntegerField(_("ignorés"), default=0)
    started_by = models.CharField(_("lancé par"), max_length=150, blank=True)
    started_at = models.DateTimeField(_("lancé le"), default=timezone.now)
    stepped_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("terminé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("émission annuelle")
        verbose_name_plural = _("émissions annuelles")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["year"], condition=Q(status="running"), name="tax_receipt_run_one_running"),
        ]

    def __str__(self) -> str:
        return f"{self.year} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE or not self.to_do:
            return 100
        return min(100, (self.issued + self.skipped) * 100 // self.to_do)


class TaxReceiptDelivery(models.Model):
    """A receipt e-mailed to its donor on its own (a yearly summary, a corrected receipt): the row
    is the claim, inserted before sending (one sender wins) and removed if sending fails."""

    receipt = models.OneToOneField(TaxReceipt, on_delete=models.PROTECT, primary_key=True, related_name="delivery")
    sent_at = models.DateTimeField(default=timezone.now)
    # Why it was not sent (no address, refused address): kept, never retried.
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("envoi de reçu fiscal")
        verbose_name_plural = _("envois de reçus fiscaux")

    def __str__(self) -> str:
        return f"{self.receipt_id} @ {self.sent_at:%Y-%m-%d %H:%M}"
