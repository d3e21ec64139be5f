"""What arrived, who did what, what runs: raw payment events, the audit log, heartbeats."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.base import AppendOnlyModel, AppendOnlyQuerySet
from campaigns.models.campaigns import Campaign
from campaigns.models.donations import Donation


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
    # When the sweeper last re-sent it: with a backlog, an event still waiting in the queue is not
    # re-sent on every sweep (each copy would cost a worker a lock and a read for nothing).
    swept_at = models.DateTimeField(null=True, blank=True, editable=False)
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
        # A donor's own changes to their monthly gift, from the signed *Mes dons* link.
        MONTHLY_AMOUNT = "monthly_amount", _("Don mensuel : nouveau montant")
        MONTHLY_PAUSE = "monthly_pause", _("Don mensuel : pause")
        MONTHLY_RESUME = "monthly_resume", _("Don mensuel : reprise")
        MONTHLY_CANCEL = "monthly_cancel", _("Don mensuel : arrêt")

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

    # The keys (services/heartbeat.py writes them, selectors/ops.py reads them).
    WORKER_PREFIX = "worker:"
    BEAT = "beat"
    RECONCILE = "reconcile"

    key = models.CharField(max_length=255, unique=True)
    at = models.DateTimeField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("pulsation")
        verbose_name_plural = _("pulsations")

    def __str__(self) -> str:
        return f"{self.key} @ {self.at:%Y-%m-%d %H:%M:%S}"
