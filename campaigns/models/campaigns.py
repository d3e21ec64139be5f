"""Campaigns and their counter; the one definition of what may embed a campaign and of days left."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
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
# A sponsor matches each gift N:1: at most 10:1 (a larger ratio is a typo, not a sponsor).
MAX_MATCH_RATIO = 10

currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Un code ISO 4217 en trois lettres majuscules."))

# What may embed a campaign (frame it, read it from another origin, post its donation form).
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


def origin_is_valid(text: str, *, wildcard: bool = True) -> bool:
    """`https://www.exemple.fr` (a scheme, a host, maybe a port; nothing else), or `*` where
    allowed (EMBED_ALLOWED_ORIGINS: opening every campaign to every site is the operator's call)."""
    return (wildcard and text == "*") or bool(_ORIGIN.match(text.rstrip("/")))


def allowed_origins(listed: Iterable[str]) -> list[str]:
    """A campaign's allowed origins, else EMBED_ALLOWED_ORIGINS; malformed entries are ignored.
    The one definition the embeds (framing, CORS) and the donation form's CSRF exception use."""
    listed = [origin.strip() for origin in listed if origin.strip()] or settings.EMBED_ALLOWED_ORIGINS
    return [origin.rstrip("/") for origin in listed if origin_is_valid(origin)]


def days_between(start: datetime, end: datetime) -> int:
    """Whole days from `start` to `end`, a begun day counting as one ("3 jours restants" until
    the last second of the third day); 0 once `end` is past."""
    return max(0, math.ceil((end - start).total_seconds() / 86400))


TITLE_MAX_LENGTH = 200
_TEXT_FIELDS = ("title", "appeal")


class CampaignText(NamedTuple):
    """A campaign's words for a reader of one language. Each falls back on its own to the campaign's
    language (`title_lang`, `appeal_lang` say which language each is really in, for `lang=`)."""

    title: str
    appeal: str
    title_lang: str
    appeal_lang: str


def text_in(*, title: str, appeal: str, locale: str, translations: Mapping[str, Any] | None, lang: str) -> CampaignText:
    """The one fallback rule, for a campaign (campaign_text) and for its cached snapshot alike:
    the translation's title or appeal when it has one, else the campaign's own."""
    entry = (translations or {}).get(lang) or {}
    own_title, own_appeal = entry.get("title") or "", entry.get("appeal") or ""
    return CampaignText(
        title=own_title or title,
        appeal=own_appeal or appeal,
        title_lang=lang if own_title else locale,
        appeal_lang=lang if own_appeal else locale,
    )


def campaign_text(campaign: Campaign, lang: str | None) -> CampaignText:
    """What every page, embed, e-mail and receipt shows of `campaign` to a reader of `lang`
    (a code of settings.LANGUAGES; empty or None: the campaign's own language)."""
    return text_in(title=campaign.title, appeal=campaign.appeal, locale=campaign.locale,
                   translations=campaign.translations, lang=lang or campaign.locale)


def translations_clean(value: Any, *, locale: str) -> dict[str, dict[str, str]]:
    """`{"en": {"title": …, "appeal": …}}` checked and normalised (texts stripped, empty ones
    dropped). Raises ValidationError keyed by the language at fault ("translations" for the shape)."""
    languages = dict(settings.LANGUAGES)
    shape = _("Traductions : un objet {langue : {\"title\": …, \"appeal\": …}}, par ex. "
              "{\"en\": {\"title\": \"Our campaign\"}}.")
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({"translations": shape})
    errors: dict[str, str] = {}
    cleaned: dict[str, dict[str, str]] = {}
    for lang, entry in value.items():
        if not isinstance(entry, Mapping) or set(entry) - set(_TEXT_FIELDS) or not all(
            isinstance(text, str) for text in entry.values()
        ):
            errors[str(lang)] = shape
            continue
        texts = {field: entry[field].strip() for field in _TEXT_FIELDS if entry.get(field, "").strip()}
        if not texts:
            continue  # an empty translation is no translation: the campaign's text shows
        if lang not in languages:
            errors[str(lang)] = _("Langue inconnue : « %(code)s » (langues possibles : %(codes)s).") % {
                "code": lang, "codes": ", ".join(languages)}
        elif lang == locale:
            errors[lang] = _("%(language)s est la langue de la campagne : son texte est le titre et le texte "
                             "d'appel de la campagne, pas une traduction.") % {"language": languages[lang]}
        elif len(texts.get("title", "")) > TITLE_MAX_LENGTH:
            errors[lang] = _("Titre trop long (%(language)s) : au plus %(max)s caractères.") % {
                "language": languages[lang], "max": TITLE_MAX_LENGTH}
        else:
            cleaned[lang] = texts
    if errors:
        raise ValidationError(errors)
    return cleaned


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("En pause")
        CLOSED = "closed", _("Close")

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    title = models.CharField(_("titre"), max_length=TITLE_MAX_LENGTH)
    appeal = models.TextField(_("texte d'appel"), blank=True)
    goal_minor = models.BigIntegerField(_("objectif (centimes)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("devise"), max_length=3, default="EUR", validators=[currency_validator])
    starts_at = models.DateTimeField(_("début"))
    ends_at = models.DateTimeField(_("fin"))
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    locale = models.CharField(_("langue"), max_length=5, default=settings.LANGUAGE_CODE, choices=settings.LANGUAGES)
    # The title and appeal in the other languages of settings.LANGUAGES: {"en": {"title", "appeal"}}
    # (a missing one falls back to `title`/`appeal`, see campaign_text). On the row itself, so the
    # snapshot a webhook builds from the counter's campaign carries them without a query.
    translations = models.JSONField(_("traductions"), default=dict, blank=True)
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
    # Matching gifts: a sponsor adds `match_ratio` × each gift received within the window, until
    # `match_cap_minor` of its money is used (services/ledger.py). No ratio: no match. On the
    # campaign row itself: the confirmation that matches has read it already, and so has the snapshot.
    match_sponsor = models.CharField(_("mécène (doublement des dons)"), max_length=120, blank=True)
    match_ratio = models.PositiveSmallIntegerField(
        _("abondement (N pour 1)"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MATCH_RATIO)],
        help_text=_("1 : chaque don est doublé ; 2 : triplé. Vide : pas d'abondement."),
    )
    match_cap_minor = models.BigIntegerField(
        _("plafond de l'abondement (centimes)"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_AMOUNT_MINOR)],
    )
    match_starts_at = models.DateTimeField(_("début de l'abondement"), null=True, blank=True)
    match_ends_at = models.DateTimeField(_("fin de l'abondement"), null=True, blank=True)
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
            # A match is all its fields or none, with a positive ratio, a cap in range and a window.
            models.CheckConstraint(
                condition=Q(match_ratio__isnull=True, match_cap_minor__isnull=True, match_starts_at__isnull=True,
                            match_ends_at__isnull=True)
                | Q(match_ratio__gte=1, match_ratio__lte=MAX_MATCH_RATIO, match_cap_minor__gt=0,
                    match_cap_minor__lte=MAX_AMOUNT_MINOR, match_ends_at__gt=models.F("match_starts_at")),
                name="campaign_match_valid",
            ),
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
        try:
            self.translations = translations_clean(self.translations, locale=self.locale)
        except ValidationError as error:
            errors["translations"] = [message for messages in error.message_dict.values() for message in messages]
        bad = [line for line in self.origins if not origin_is_valid(line, wildcard=False)]
        if bad:
            errors["allowed_origins"] = _("Pas une origine (https://www.exemple.fr) : %(lines)s") % {
                "lines": ", ".join(bad)}
        errors.update(self._match_errors())
        if errors:
            raise ValidationError(errors)

    def _match_errors(self) -> dict[str, str]:
        fields = (self.match_ratio, self.match_cap_minor, self.match_starts_at, self.match_ends_at)
        if all(value is None for value in fields) and not self.match_sponsor:
            return {}
        errors = {}
        if self.match_ratio is None:
            errors["match_ratio"] = _("Un abondement a besoin de son ratio (1 : chaque don est doublé).")
        elif not 1 <= self.match_ratio <= MAX_MATCH_RATIO:
            errors["match_ratio"] = _("Le ratio de l'abondement va de 1 à %(max)s.") % {"max": MAX_MATCH_RATIO}
        if self.match_cap_minor is None:
            errors["match_cap_minor"] = _("Un abondement a besoin de son plafond.")
        elif not 0 < self.match_cap_minor <= MAX_AMOUNT_MINOR:
            highest = money.format_money(MAX_AMOUNT_MINOR, self._money_currency, "fr")
            errors["match_cap_minor"] = _("Le plafond de l'abondement doit être supérieur à zéro et au plus "
                                          "%(max)s.") % {"max": highest}
        if self.match_starts_at is None:
            errors["match_starts_at"] = _("Un abondement a besoin de son début.")
        if self.match_ends_at is None:
            errors["match_ends_at"] = _("Un abondement a besoin de sa fin.")
        elif self.match_starts_at is not None and self.match_ends_at <= self.match_starts_at:
            errors["match_ends_at"] = _("L'abondement doit finir après son début.")
        return errors

    @property
    def _money_currency(self) -> str:
        return self.currency if self.currency and money.is_known_currency(self.currency) else "EUR"

    @property
    def has_match(self) -> bool:
        return self.match_ratio is not None

    def match_left(self, matched_minor: int) -> int:
        """What is left of the sponsor's cap once `matched_minor` is used (0 without a match)."""
        return max(0, self.match_cap_minor - matched_minor) if self.has_match else 0

    def match_window_contains(self, at: datetime) -> bool:
        """Whether a gift made at `at` is matched (the window's end excluded)."""
        return self.has_match and self.match_starts_at <= at < self.match_ends_at

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
    # Sponsor money matched to gifts (Σ of the ledger's match entries, net of reversals; part of
    # total_minor): what the match's cap has used.
    matched_minor = models.BigIntegerField(default=0)
    # Refund events of this campaign waiting for their donation's success (they came first):
    # a success looks for them only when this is not zero, one query saved on every webhook.
    # Derived like the others: reconcile recounts it from the deferred events.
    deferred_events = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("total de campagne")
        verbose_name_plural = _("totaux de campagne")
        constraints = [
            models.CheckConstraint(condition=Q(pending_minor__gte=0), name="total_pending_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.total_minor}"


class Milestone(models.Model):
    """A step of a campaign's total that its banners announce (`Cap des 30 000 €`); one above the
    goal is a stretch goal. `reached_at` is set once, by a conditional UPDATE, the first time the
    total reaches it (services/milestones.py); a later refund does not unset it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="milestones")
    amount_minor = models.BigIntegerField(
        _("montant (centimes)"), validators=[MinValueValidator(1), MaxValueValidator(MAX_AMOUNT_MINOR)]
    )
    label = models.CharField(_("libellé"), max_length=120)
    reached_at = models.DateTimeField(_("atteint le"), null=True, blank=True, editable=False)
    # The editors' e-mail about it was claimed (sent, or being sent) at this time: sent once.
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("palier")
        verbose_name_plural = _("paliers")
        ordering = ["campaign", "amount_minor"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "amount_minor"], name="milestone_amount_unique"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0) & Q(amount_minor__lte=MAX_AMOUNT_MINOR), name="milestone_amount_range"
            ),
        ]

    def __str__(self) -> str:
        return self.label
