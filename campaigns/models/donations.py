"""Donations and the append-only ledger from which every total is derived."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.base import AppendOnlyModel, AppendOnlyQuerySet
from campaigns.models.campaigns import MAX_AMOUNT_MINOR, Campaign, currency_validator


class DonationSource(models.TextChoices):
    GENERIC = "generic", _("Webhook générique")
    SANDBOX = "sandbox", _("Bac à sable")
    STRIPE = "stripe", _("Stripe")
    BANK = "bank", _("Virement bancaire")
    MANUAL = "manual", _("Saisie manuelle")
    DEMO = "demo", _("Démonstration")


# Money from readers gets a receipt e-mail; editors' manual entries and the demo seed do not.
RECEIPT_SOURCES = (DonationSource.BANK, DonationSource.GENERIC, DonationSource.SANDBOX, DonationSource.STRIPE)


class Subscription(models.Model):
    """A monthly gift at its provider (a Stripe subscription): each paid instalment is its own
    Donation pointing here. Its donor manages it from *Mes dons*; state changes here only after
    the provider said yes. Who may manage it is read from its donations' donor_key (so a GDPR
    erasure of those donations also ends the donor's access; nothing personal is kept here)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actif")
        PAUSED = "paused", _("En pause")
        CANCELED = "canceled", _("Arrêté")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="subscriptions")
    source = models.CharField(_("source"), max_length=16, choices=DonationSource.choices)
    # The provider's ids: the subscription (`sub_…`) and its customer (`cus_…`, for the billing portal).
    external_id = models.CharField(_("identifiant externe"), max_length=255)
    customer_id = models.CharField(_("client chez le prestataire"), max_length=255, blank=True)
    amount_minor = models.BigIntegerField(_("montant mensuel (centimes)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("devise"), max_length=3, validators=[currency_validator])
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Bumped by every change the donor makes: a form carries the version it was drawn from, so a
    # stale or double-submitted form is refused, and it names the change's idempotency key.
    version = models.PositiveIntegerField(default=1, editable=False)
    # Set when the provider said the gift changed (a webhook), in the transaction that processes it;
    # cleared by the sync that recorded the provider's answer. Still set a while later: the sync task
    # was lost (broker down, worker killed) or the provider failed; the sweeper sends it again, at
    # most once per SWEEP_AFTER_SECONDS (sync_swept_at).
    sync_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_swept_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        verbose_name = _("don mensuel")
        verbose_name_plural = _("dons mensuels")
        indexes = [
            # The sweeper's query: the few gifts waiting for a sync, never the whole table.
            models.Index(fields=["sync_requested_at"], name="subscription_sync_due",
                         condition=Q(sync_requested_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="subscription_identity"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0) & Q(amount_minor__lte=MAX_AMOUNT_MINOR),
                name="subscription_amount_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Donation(models.Model):
    Source = DonationSource

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        CONFIRMED = "confirmed", _("Confirmé")
        REFUNDED = "refunded", _("Remboursé")
        FAILED = "failed", _("Échoué")
        EXPIRED = "expired", _("Expiré")

    class Frequency(models.TextChoices):
        ONCE = "once", _("Ponctuel")
        MONTHLY = "monthly", _("Mensuel")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="donations")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    # (source, external_id) is the idempotency key of every incoming gift.
    external_id = models.CharField(_("identifiant externe"), max_length=255)
    reference = models.CharField(_("référence"), max_length=16, unique=True, null=True, blank=True)
    amount_minor = models.BigIntegerField(
        _("montant (centimes)"), validators=[MinValueValidator(1)]
    )
    currency = models.CharField(_("devise"), max_length=3, validators=[currency_validator])
    refunded_minor = models.BigIntegerField(_("remboursé (centimes)"), default=0)
    # Σ of this donation's ledger entries, moved in each entry's transaction like CampaignTotal
    # (the ledger stays the truth; `reconcile` checks it): what counts it, without a SUM.
    balance_minor = models.BigIntegerField(_("solde (centimes)"), default=0, editable=False)
    # Σ of this donation's match entries (a sponsor's money added to it, net of reversals): kept
    # apart from balance_minor, which is the donor's own money and what counts the donation.
    matched_minor = models.BigIntegerField(_("abondement (centimes)"), default=0, editable=False)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.PENDING)
    frequency = models.CharField(_("fréquence"), max_length=8, choices=Frequency.choices, default=Frequency.ONCE)
    donor_name = models.CharField(_("nom"), max_length=200, blank=True)
    donor_email = models.EmailField(_("e-mail"), blank=True)
    # Who counts as one donor: a keyed hash of the e-mail, or the donation itself.
    donor_key = models.CharField(max_length=64, editable=False)
    anonymous = models.BooleanField(_("anonyme"), default=False)
    # The postal address a French tax receipt needs (asked only while receipts are enabled).
    donor_address = models.CharField(_("adresse"), max_length=300, blank=True)
    donor_postal_code = models.CharField(_("code postal"), max_length=12, blank=True)
    donor_city = models.CharField(_("ville"), max_length=100, blank=True)
    message = models.TextField(_("message public"), blank=True)
    # The donor agreed to show the amount on the donor wall (hidden otherwise).
    public_amount = models.BooleanField(_("montant public"), default=False)
    article_url = models.URLField(_("article d'origine"), max_length=1000, blank=True)
    locale = models.CharField(_("langue"), max_length=5, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    occurred_at = models.DateTimeField(_("date du don"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmé le"), null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the receipt was not sent (a refused address): set with receipt_sent_at, never retried.
    receipt_error = models.CharField(_("erreur du reçu"), max_length=500, blank=True, editable=False)
    # A bank-transfer pledge counts as pending money only once its donor confirmed it from the
    # e-mail that carries the bank details (a signed link): an unverified promise is never public.
    pledge_confirmed_at = models.DateTimeField(_("promesse confirmée le"), null=True, blank=True, editable=False)
    # When the e-mail with the bank details and the confirmation link was handed to the mail
    # server (claimed before sending, released if sending fails): a sweep sends what was missed.
    pledge_details_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Keyed hash of the client address that made the pledge (per-address limits); no raw IP.
    client_key = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    # A monthly instalment: the provider's subscription it was paid by (set from the webhook).
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="donations",
        verbose_name=_("don mensuel"),
    )

    class Meta:
        verbose_name = _("don")
        verbose_name_plural = _("dons")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="donation_idempotency_key"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0) & Q(amount_minor__lte=MAX_AMOUNT_MINOR),
                name="donation_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=models.F("amount_minor")),
                name="donation_refund_within_amount",
            ),
            models.CheckConstraint(condition=Q(balance_minor__gte=0), name="donation_balance_not_negative"),
            models.CheckConstraint(condition=Q(matched_minor__gte=0), name="donation_matched_not_negative"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["campaign", "donor_key"]),
            # *Mes dons*: one donor's gifts across every campaign.
            models.Index(fields=["donor_key"], name="donation_donor_key"),
            # Pending transfer pledges by amount: what statement matching's suggestions look up.
            models.Index(
                fields=["amount_minor"],
                name="donation_bank_payable_amount",
                condition=Q(source="bank", status__in=("pending", "expired", "failed")),
            ),
            # The few donations whose receipt is due: what the receipts task looks for.
            models.Index(
                fields=["confirmed_at"],
                name="donation_receipt_due",
                condition=Q(receipt_sent_at__isnull=True, status="confirmed", source__in=RECEIPT_SOURCES)
                & ~Q(donor_email=""),
            ),
        ]

    def __str__(self) -> str:
        return self.reference or f"{self.source}:{self.external_id}"


class LedgerEntry(AppendOnlyModel):
    """Append-only: the truth from which every total is derived."""

    class Kind(models.TextChoices):
        CONFIRM = "confirm", _("Confirmation")
        REFUND = "refund", _("Remboursement")
        CORRECTION = "correction", _("Correction")
        # A sponsor's money matched to the gift (positive, once per gift) or taken back when the
        # gift is refunded (negative): not the donor's money, so not in the donation's balance.
        MATCH = "match", _("Abondement")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="ledger")
    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, related_name="ledger")
    delta_minor = models.BigIntegerField(_("mouvement (centimes)"))
    kind = models.CharField(_("nature"), max_length=12, choices=Kind.choices)
    note = models.CharField(_("motif"), max_length=500, blank=True)
    # The provider's identity of a refund (Stripe: the Refund object's id `re_…`; generic: the
    # event's refund id or event id): one refund counts once, however many events announce it.
    refund_id = models.CharField(_("identifiant du remboursement"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()
    append_only_message = "The ledger is append-only: post a correction instead."

    class Meta:
        verbose_name = _("écriture")
        verbose_name_plural = _("grand livre")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta_minor=0), name="ledger_delta_not_zero"),
            models.UniqueConstraint(
                fields=["donation", "refund_id"], condition=~Q(refund_id=""), name="ledger_refund_once"
            ),
            # A gift is matched at most once, whatever retries or races.
            models.UniqueConstraint(
                fields=["donation"], condition=Q(kind="match", delta_minor__gt=0), name="ledger_match_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.delta_minor} ({self.donation_id})"
