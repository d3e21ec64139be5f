"""Jauge's domain: fields, constraints and tiny properties. Workflows live in services/."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns import money

# The largest single amount Jauge accepts, in minor units (10 000 000,00): anything above
# is a data error (a provider bug, a pasted IBAN), never a gift.
MAX_AMOUNT_MINOR = 1_000_000_000
# A year: the thank-you marker is the reader's to keep, not a subscription.
MAX_THANK_DAYS = 366

currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Un code ISO 4217 en trois lettres majuscules."))


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("En pause")
        CLOSED = "closed", _("Close")

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    title = models.CharField(_("titre"), max_length=200)
    appeal = models.TextField(_("texte d'appel"), blank=True)
    goal_minor = models.BigIntegerField(_("objectif (centimes)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("devise"), max_length=3, default="EUR", validators=[currency_validator])
    starts_at = models.DateTimeField(_("début"))
    ends_at = models.DateTimeField(_("fin"))
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    locale = models.CharField(
        _("langue"), max_length=5, default="fr", choices=[("fr", "Français"), ("en", "English")]
    )
    featured = models.BooleanField(
        _("mise en avant"), default=False, help_text=_("Affichée par /embed/current/ quand elle est active.")
    )
    allowed_origins = models.TextField(
        _("origines autorisées pour l'intégration"),
        blank=True,
        help_text=_("Une origine par ligne (https://www.exemple.fr). Vide : EMBED_ALLOWED_ORIGINS."),
    )
    poll_interval_seconds = models.PositiveIntegerField(
        _("intervalle de rafraîchissement (s)"), default=10, validators=[MinValueValidator(2)]
    )
    # After a gift the reader's banners say "Merci !" instead of asking, for this many days
    # (a marker kept in the publication's own localStorage by the loader; 0: always ask).
    thank_days = models.PositiveSmallIntegerField(
        _("remerciement (jours)"),
        default=30,
        validators=[MaxValueValidator(MAX_THANK_DAYS)],
        help_text=_("Après un don, les bannières de la publication remercient le lecteur au lieu de "
                    "solliciter, pendant ce nombre de jours (0 : toujours solliciter)."),
    )
    # Theming: CSS custom properties on the banner.
    color_primary = models.CharField(_("couleur principale"), max_length=7, default="#b8002e")
    color_background = models.CharField(_("couleur de fond"), max_length=7, default="#ffffff")
    color_text = models.CharField(_("couleur du texte"), max_length=7, default="#1a1a1a")
    font_family = models.CharField(_("police"), max_length=200, blank=True)
    # Donation form.
    preset_amounts_minor = models.JSONField(_("montants proposés (centimes)"), default=list, blank=True)
    min_amount_minor = models.BigIntegerField(_("don minimum (centimes)"), default=100)
    max_amount_minor = models.BigIntegerField(_("don maximum (centimes)"), default=10_000_000)
    donor_wall = models.BooleanField(_("mur des donateurs"), default=False)
    # Promised bank transfers are shown publicly up to this share of the goal: a promise costs
    # nothing to make, so a handful of them must never fill a banner.
    pending_cap_percent = models.PositiveSmallIntegerField(
        _("plafond des promesses affichées (% de l'objectif)"),
        default=25,
        validators=[MaxValueValidator(100)],
        help_text=_("Part de l'objectif au-delà de laquelle les virements promis ne sont plus affichés."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("campagne")
        verbose_name_plural = _("campagnes")
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(goal_minor__gt=0), name="campaign_goal_positive"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="campaign_ends_after_start"),
            models.CheckConstraint(
                condition=Q(min_amount_minor__gt=0) & Q(max_amount_minor__gte=models.F("min_amount_minor")),
                name="campaign_amount_bounds",
            ),
            models.CheckConstraint(condition=~Q(slug="current"), name="campaign_slug_not_reserved"),
            models.CheckConstraint(condition=Q(thank_days__lte=MAX_THANK_DAYS), name="campaign_thank_days_max"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        errors = {}
        if self.slug == "current":
            errors["slug"] = _("« current » est réservé à la campagne en cours.")
        if self.currency and not money.is_known_currency(self.currency):
            errors["currency"] = _("Devise inconnue : %(code)s") % {"code": self.currency}
        if self.goal_minor is not None and self.goal_minor <= 0:
            errors["goal_minor"] = _("L'objectif doit être supérieur à zéro.")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("La fin doit être après le début.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_open(self) -> bool:
        """Open to new gifts through the donation form."""
        now = timezone.now()
        return self.status == self.Status.ACTIVE and self.starts_at <= now < self.ends_at

    @property
    def pending_cap_minor(self) -> int:
        """The most promised (not yet received) money the public figures ever show."""
        return self.goal_minor * self.pending_cap_percent // 100

    @property
    def origins(self) -> list[str]:
        return [line.strip() for line in self.allowed_origins.splitlines() if line.strip()]


class CampaignTotal(models.Model):
    """A counter derived from the ledger, changed only in the ledger entry's transaction."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="totals")
    total_minor = models.BigIntegerField(default=0)
    pending_minor = models.BigIntegerField(default=0)
    donation_count = models.PositiveIntegerField(default=0)
    donor_count = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)
    # Refund events of this campaign waiting for their donation's success (they came first):
    # a success looks for them only when this is not zero, one query saved on every webhook.
    deferred_events = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("total de campagne")
        verbose_name_plural = _("totaux de campagne")
        constraints = [
            models.CheckConstraint(condition=Q(pending_minor__gte=0), name="total_pending_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.total_minor}"


# Money from readers gets a receipt e-mail; editors' manual entries and the demo seed do not.
RECEIPT_SOURCES = ("bank", "generic", "sandbox", "stripe")


class Donation(models.Model):
    class Source(models.TextChoices):
        GENERIC = "generic", _("Webhook générique")
        SANDBOX = "sandbox", _("Bac à sable")
        STRIPE = "stripe", _("Stripe")
        BANK = "bank", _("Virement bancaire")
        MANUAL = "manual", _("Saisie manuelle")
        DEMO = "demo", _("Démonstration")

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
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.PENDING)
    frequency = models.CharField(_("fréquence"), max_length=8, choices=Frequency.choices, default=Frequency.ONCE)
    donor_name = models.CharField(_("nom"), max_length=200, blank=True)
    donor_email = models.EmailField(_("e-mail"), blank=True)
    # Who counts as one donor: a keyed hash of the e-mail, or the donation itself.
    donor_key = models.CharField(max_length=64, editable=False)
    anonymous = models.BooleanField(_("anonyme"), default=False)
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
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["campaign", "donor_key"]),
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

    @property
    def net_minor(self) -> int:
        if self.status in (self.Status.CONFIRMED, self.Status.REFUNDED):
            return self.amount_minor - self.refunded_minor
        return 0


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(self.model.append_only_message)

    def delete(self):
        raise TypeError(self.model.append_only_message)


class AppendOnlyModel(models.Model):
    """Rows are written once: no update or delete through the ORM (the admin goes through it too)."""

    append_only_message = "append-only"

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError(self.append_only_message)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(self.append_only_message)


class LedgerEntry(AppendOnlyModel):
    """Append-only: the truth from which every total is derived."""

    class Kind(models.TextChoices):
        CONFIRM = "confirm", _("Confirmation")
        REFUND = "refund", _("Remboursement")
        CORRECTION = "correction", _("Correction")

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
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.delta_minor} ({self.donation_id})"



class PaymentEvent(models.Model):
    """A provider's webhook, stored raw before it is acknowledged."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Reçu")
        PROCESSED = "processed", _("Traité")
        FAILED = "failed", _("En échec")
        # A refund that arrived before its donation: applied when the donation is confirmed.
        DEFERRED = "deferred", _("En attente du don")

    provider = models.CharField(_("prestataire"), max_length=32)
    event_id = models.CharField(_("identifiant d'événement"), max_length=255)
    event_type = models.CharField(_("type"), max_length=64, blank=True)
    donation_external_id = models.CharField(max_length=255, blank=True, db_index=True)
    body = models.TextField(_("corps brut"))
    headers = models.JSONField(_("en-têtes"), default=dict, blank=True)
    received_at = models.DateTimeField(_("reçu le"), default=timezone.now)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(_("tentatives"), default=0)
    last_error = models.TextField(_("dernière erreur"), blank=True)
    processed_at = models.DateTimeField(_("traité le"), null=True, blank=True)
    donation = models.ForeignKey(
        Donation, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )

    class Meta:
        verbose_name = _("événement de paiement")
        verbose_name_plural = _("événements de paiement")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="payment_event_idempotency_key"),
        ]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


class AuditLog(AppendOnlyModel):
    """Who did what, when and why: every money-changing action of a person (admin, dashboard).

    Append-only, and free of donor personal data (it names donations by id and reference), so
    a GDPR erasure never has to rewrite it. Also carries the back-office permissions.
    """

    class Action(models.TextChoices):
        MANUAL_ENTRY = "manual_entry", _("Saisie d'un don hors ligne")
        REFUND = "refund", _("Remboursement")
        CORRECTION = "correction", _("Correction")
        ERASURE = "erasure", _("Effacement RGPD")
        EVENT_RETRY = "event_retry", _("Relance d'un événement")
        EXPORT = "export", _("Export")
        PLEDGE_VOID = "pledge_void", _("Annulation de promesses")
        STATEMENT_IMPORT = "stmt_import", _("Import d'un relevé bancaire")
        STATEMENT_ASSIGN = "stmt_assign", _("Affectation d'une ligne de relevé")
        STATEMENT_DISMISS = "stmt_dismiss", _("Ligne de relevé écartée")
        STATEMENT_UNDO = "stmt_undo", _("Annulation d'un rapprochement")

    at = models.DateTimeField(_("date"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("auteur")
    )
    # Kept even if the account is deleted later.
    actor_username = models.CharField(_("identifiant de l'auteur"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    reason = models.TextField(_("motif"), blank=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("campagne")
    )
    donation = models.ForeignKey(
        Donation, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("don")
    )
    amount_minor = models.BigIntegerField(_("montant (centimes)"), null=True, blank=True)
    currency = models.CharField(_("devise"), max_length=3, blank=True)
    details = models.JSONField(_("détails"), default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()
    append_only_message = "The audit log is append-only."

    class Meta:
        verbose_name = _("entrée du journal d'audit")
        verbose_name_plural = _("journal d'audit")
        ordering = ["-at", "-id"]
        permissions = [
            ("record_manual_donation", _("Peut saisir un don hors ligne")),
            ("refund_donation", _("Peut rembourser un don")),
            ("correct_donation", _("Peut corriger un don")),
            ("erase_donor_data", _("Peut effacer les données personnelles d'un donateur")),
            ("retry_payment_event", _("Peut relancer un événement de paiement")),
            ("export_donations", _("Peut exporter les dons")),
            ("view_dashboard", _("Peut voir le tableau de bord")),
            ("import_statement", _("Peut importer et rapprocher des relevés bancaires")),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action}"



class Heartbeat(models.Model):
    """The last time something proved it runs: `worker:<hostname>` (a worker consumed a task),
    `beat` (beat scheduled one), `reconcile` (the periodic reconcile, with the drift it found).
    One row per key, overwritten: read by the health checks and /metrics, in the database so
    every web process and worker sees the same."""

    key = models.CharField(max_length=255, unique=True)
    at = models.DateTimeField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("pulsation")
        verbose_name_plural = _("pulsations")

    def __str__(self) -> str:
        return f"{self.key} @ {self.at:%Y-%m-%d %H:%M:%S}"


# Bank statements (their own module, registered with the app through this import).
from campaigns.models_statements import (  # noqa: E402, F401
    BankAccount,
    CsvProfile,
    StatementImport,
    StatementLine,
)
