"""Admin forms: editors type money in major units ("25 000", "25,50"); the database keeps
integer minor units. Parsing goes through money.py only."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.models import MAX_AMOUNT_MINOR, TITLE_MAX_LENGTH, Campaign, origin_is_valid, translations_clean
from campaigns.services.backoffice import MANUAL_METHODS
from campaigns.services.campaigns import campaign_currency_frozen, campaign_slug_frozen

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
COLOR_FIELDS = ("color_primary", "color_background", "color_text")
MONEY_FIELDS = ("goal_minor", "min_amount_minor", "max_amount_minor")


def _major(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return ""
    return str(money.to_decimal(amount_minor, currency)).replace(".", ",")


def parse_major(text: str, currency: str, *, allow_negative: bool = False, capped: bool = True) -> int:
    """Major units as typed by staff → minor units, or a form error. Every amount of a gift
    (entry, refund, correction, campaign bounds and presets) is at most MAX_AMOUNT_MINOR: above
    it the database refuses the row, and staff get a form error instead of a 500."""
    text = (text or "").strip()
    sign = 1
    if allow_negative and text[:1] in "-−":
        sign, text = -1, text[1:].strip()
    code = currency if money.is_known_currency(currency) else "EUR"
    try:
        amount = money.parse_amount(text, code)
    except money.AmountError:
        raise forms.ValidationError(
            _("Montant invalide : « %(value)s » (exemple : 25 ou 25,50)."), params={"value": text}
        ) from None
    if capped and amount > MAX_AMOUNT_MINOR:
        raise forms.ValidationError(
            _("Montant trop élevé : au plus %(max)s."),
            params={"max": money.format_money(MAX_AMOUNT_MINOR, code, "fr")},
        )
    return sign * amount


class CampaignAdminForm(forms.ModelForm):
    goal_minor = forms.CharField(label=_("Objectif"), help_text=_("En unités de la devise, par ex. 25 000."))
    min_amount_minor = forms.CharField(label=_("Don minimum"), initial="1")
    max_amount_minor = forms.CharField(label=_("Don maximum"), initial="100000")
    preset_amounts_minor = forms.CharField(
        label=_("Montants proposés"),
        required=False,
        help_text=_("Séparés par des espaces ou des points-virgules, par ex. 10 ; 25 ; 50."),
    )

    match_cap_minor = forms.CharField(
        label=_("Plafond de l'abondement"), required=False,
        help_text=_("Ce que le mécène ajoute au plus, en unités de la devise, par ex. 5 000. Vide : pas d'abondement."),
    )

    pending_cap_percent = forms.IntegerField(
        label=_("Plafond des promesses affichées (% de l'objectif)"), required=False, min_value=0, max_value=100,
        help_text=_("Les virements promis (confirmés par leur donateur) s'affichent jusqu'à cette part de "
                    "l'objectif. Vide : 25."),
    )

    class Meta:
        model = Campaign
        fields = (
            "title", "slug", "status", "featured", "locale", "starts_at", "ends_at", "currency", "goal_minor",
            "appeal", "color_primary", "color_background", "color_text", "font_family", "preset_amounts_minor",
            "min_amount_minor", "max_amount_minor", "pending_cap_percent", "donor_wall", "allowed_origins",
            "poll_interval_seconds", "thank_days",
            "match_sponsor", "match_ratio", "match_cap_minor", "match_starts_at", "match_ends_at",
        )
        widgets = {name: forms.TextInput(attrs={"type": "color"}) for name in COLOR_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        currency = instance.currency or "EUR"
        if instance.pk:
            for name in MONEY_FIELDS:
                self.initial[name] = _major(getattr(instance, name), currency)
            self.initial["match_cap_minor"] = _major(instance.match_cap_minor, currency)
            self.initial["preset_amounts_minor"] = " ; ".join(
                _major(amount, currency) for amount in instance.preset_amounts_minor or []
            )
            for code, texts in (instance.translations or {}).items():
                for field, text in texts.items():
                    self.initial[f"{field}_{code}"] = text
        own = f"title_{instance.locale}"
        if own in self.fields:
            self.fields[own].help_text = _("Langue de la campagne : laissez vide, son titre est celui ci-dessus.")
        if "slug" in self.fields and self.slug_frozen:
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = _("Figé : la campagne a été publiée, ses intégrations utilisent ce slug.")

    @property
    def slug_frozen(self) -> bool:
        """Live (or once live) campaigns keep their slug: embeds on articles point at it."""
        return campaign_slug_frozen(campaign_id=self.instance.pk)

    def _currency(self) -> str:
        return (self.data.get(self.add_prefix("currency")) or self.instance.currency or "EUR").strip().upper()

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].strip().upper()
        if not money.is_known_currency(code):
            raise forms.ValidationError(_("Devise inconnue : %(code)s"), params={"code": code})
        if code != self.instance.currency and campaign_currency_frozen(campaign_id=self.instance.pk):
            raise forms.ValidationError(_("La devise ne peut plus changer : la campagne a reçu des dons."))
        return code

    def clean_goal_minor(self) -> int:
        # A goal is not a gift: the single-gift cap does not bound it.
        amount = parse_major(self.cleaned_data["goal_minor"], self._currency(), capped=False)
        if amount <= 0:
            raise forms.ValidationError(_("L'objectif doit être supérieur à zéro."))
        return amount

    def clean_min_amount_minor(self) -> int:
        amount = parse_major(self.cleaned_data["min_amount_minor"], self._currency())
        if amount <= 0:
            raise forms.ValidationError(_("Le don minimum doit être supérieur à zéro."))
        return amount

    def clean_max_amount_minor(self) -> int:
        return parse_major(self.cleaned_data["max_amount_minor"], self._currency())

    def clean_match_cap_minor(self) -> int | None:
        text = (self.cleaned_data.get("match_cap_minor") or "").strip()
        if not text:
            return None
        amount = parse_major(text, self._currency())
        if amount <= 0:
            raise forms.ValidationError(_("Le plafond de l'abondement doit être supérieur à zéro."))
        return amount

    def clean_preset_amounts_minor(self) -> list[int]:
        text = self.cleaned_data.get("preset_amounts_minor") or ""
        parts = [part for part in re.split(r"[;\s]+", text) if part]
        amounts = [parse_major(part, self._currency()) for part in parts]
        if any(amount <= 0 for amount in amounts):
            raise forms.ValidationError(_("Les montants proposés doivent être positifs."))
        return amounts

    def clean_pending_cap_percent(self) -> int:
        value = self.cleaned_data.get("pending_cap_percent")
        return Campaign._meta.get_field("pending_cap_percent").default if value is None else value

    def clean_allowed_origins(self) -> str:
        lines = [line.strip() for line in self.cleaned_data.get("allowed_origins", "").splitlines() if line.strip()]
        bad = [line for line in lines if not origin_is_valid(line, wildcard=False)]
        if bad:
            raise forms.ValidationError(
                _("Pas une origine (https://www.exemple.fr) : %(lines)s"), params={"lines": ", ".join(bad)}
            )
        return "\n".join(line.rstrip("/") for line in lines)

    def clean(self):
        cleaned = super().clean()
        self._clean_translations(cleaned)
        for name in COLOR_FIELDS:
            value = cleaned.get(name)
            if value and not COLOR_RE.match(value):
                self.add_error(name, _("Une couleur #rrggbb."))
        low, high = cleaned.get("min_amount_minor"), cleaned.get("max_amount_minor")
        if low is not None and high is not None:
            if high < low:
                self.add_error("max_amount_minor", _("Le maximum doit être au moins égal au minimum."))
            presets = cleaned.get("preset_amounts_minor") or []
            outside = [p for p in presets if not low <= p <= high]
            if outside:
                self.add_error(
                    "preset_amounts_minor", _("Chaque montant proposé doit être entre le minimum et le maximum.")
                )
        return cleaned

    def _clean_translations(self, cleaned: dict) -> None:
        """The per-language fields into `translations`, checked by the model's rule; an error shows
        on the language's title field. Always set on the instance (empty when refused), so the
        model's own check never meets what this form already reported."""
        typed = {code: {field: cleaned.get(f"{field}_{code}") or "" for field in ("title", "appeal")}
                 for code in TRANSLATION_LANGUAGES}
        locale = cleaned.get("locale") or self.instance.locale
        try:
            self.instance.translations = translations_clean(typed, locale=locale)
        except ValidationError as error:
            self.instance.translations = {}
            for code, messages in error.message_dict.items():
                for message in messages:
                    self.add_error(f"title_{code}" if code in TRANSLATION_LANGUAGES else None, message)


# One title and one appeal field per language of settings.LANGUAGES, declared on the form class so
# that the admin's fieldsets may name them (`title_en`, `appeal_en`); `translations` holds them.
TRANSLATION_LANGUAGES = dict(settings.LANGUAGES)


def translation_field_names() -> tuple[str, ...]:
    return tuple(f"{field}_{code}" for code in TRANSLATION_LANGUAGES for field in ("title", "appeal"))


def _add_translation_fields(form_class: type[forms.ModelForm]) -> None:
    for code, name in TRANSLATION_LANGUAGES.items():
        fields = {
            f"title_{code}": forms.CharField(
                label=lazy(lambda name=name: gettext("Titre (%(language)s)") % {"language": name}, str)(),
                required=False, max_length=TITLE_MAX_LENGTH,
                help_text=_("Vide : le titre de la campagne."),
            ),
            f"appeal_{code}": forms.CharField(
                label=lazy(lambda name=name: gettext("Texte d'appel (%(language)s)") % {"language": name}, str)(),
                required=False, widget=forms.Textarea(attrs={"rows": 3}),
                help_text=_("Vide : le texte d'appel de la campagne."),
            ),
        }
        form_class.base_fields.update(fields)
        form_class.declared_fields.update(fields)


_add_translation_fields(CampaignAdminForm)


def _datetime_hint() -> str:
    """An example in the first format Django reads (and shows) a date-time in, in the editor's language:
    24/11/2026 14:30:00 in French, 2026-11-24 14:30:00 in English (where 24/11 would not parse)."""
    example = datetime(2026, 11, 24, 14, 30).strftime(formats.get_format("DATETIME_INPUT_FORMATS")[0])
    return gettext("Format : %(example)s.") % {"example": example}


class ManualDonationForm(forms.Form):
    campaign = forms.ModelChoiceField(label=_("Campagne"), queryset=Campaign.objects.all())
    method = forms.ChoiceField(
        label=_("Moyen de paiement"),
        choices=list(zip(MANUAL_METHODS, (_("Chèque"), _("Espèces"), _("Virement")), strict=True)),
    )
    amount = forms.CharField(label=_("Montant"), help_text=_("En unités de la devise, par ex. 50 ou 50,00."))
    received_at = forms.DateTimeField(
        label=_("Reçu le"), initial=timezone.now, help_text=lazy(_datetime_hint, str)()
    )
    number = forms.CharField(
        label=_("Numéro"), required=False, max_length=120,
        help_text=_("Numéro du chèque ou du virement : empêche de le saisir deux fois."),
    )
    pledge_reference = forms.CharField(
        label=_("Référence de promesse"), required=False, max_length=16,
        help_text=_("Pour un virement annoncé sur la page de don (JG-…) : confirme la promesse au lieu "
                    "d'ajouter un don."),
    )
    donor_name = forms.CharField(label=_("Nom du donateur"), required=False, max_length=200)
    donor_email = forms.EmailField(label=_("E-mail du donateur"), required=False)
    anonymous = forms.BooleanField(label=_("Anonyme"), required=False)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # One key per form shown: a double-submitted form is recognised and counted once.
    entry_key = forms.CharField(
        widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64, required=False
    )

    def clean(self):
        cleaned = super().clean()
        campaign = cleaned.get("campaign")
        if campaign and cleaned.get("amount") is not None:
            try:
                cleaned["amount_minor"] = parse_major(cleaned["amount"], campaign.currency)
            except forms.ValidationError as exc:
                self.add_error("amount", exc)
            else:
                if cleaned["amount_minor"] <= 0:
                    self.add_error("amount", _("Le montant doit être positif."))
        return cleaned


class RefundForm(forms.Form):
    amount = forms.CharField(
        label=_("Montant à rembourser"), required=False, help_text=_("Vide : tout ce qui reste.")
    )
    reason = forms.CharField(label=_("Motif"), widget=forms.Textarea(attrs={"rows": 2}))
    # One key per form shown: a double-submitted refund is one refund at the provider too.
    request_key = forms.CharField(
        widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64, required=False
    )

    def __init__(self, *args, currency: str, **kwargs):
        self.currency = currency
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> int | None:
        text = self.cleaned_data.get("amount", "").strip()
        if not text:
            return None
        amount = parse_major(text, self.currency)
        if amount <= 0:
            raise forms.ValidationError(_("Le montant doit être positif."))
        return amount


class CorrectionForm(forms.Form):
    delta = forms.CharField(
        label=_("Correction"), help_text=_("Positive ou négative, par ex. -5 ou 450,00.")
    )
    reason = forms.CharField(label=_("Motif"), widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, currency: str, **kwargs):
        self.currency = currency
        super().__init__(*args, **kwargs)

    def clean_delta(self) -> int:
        amount = parse_major(self.cleaned_data["delta"], self.currency, allow_negative=True)
        if amount == 0:
            raise forms.ValidationError(_("Une correction ne peut pas être nulle."))
        return amount


class ErasureForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif"), widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Par ex. : demande du donateur reçue par e-mail le 24/11/2026."),
    )
    confirm = forms.BooleanField(
        label=_("Je confirme : les données personnelles de ce donateur seront effacées de tous ses dons. "
                "Les montants et le grand livre restent."),
    )


class MilestoneAdminForm(forms.ModelForm):
    """A milestone typed in major units (30 000); the label is what banners say when it is next."""

    amount_minor = forms.CharField(label=_("Montant"), help_text=_("En unités de la devise, par ex. 30 000."))

    class Meta:
        fields = ("amount_minor", "label")

    def __init__(self, *args, currency: str = "EUR", **kwargs):
        self.currency = currency
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["amount_minor"] = _major(self.instance.amount_minor, currency)

    def clean_amount_minor(self) -> int:
        amount = parse_major(self.cleaned_data["amount_minor"], self.currency)
        if amount <= 0:
            raise forms.ValidationError(_("Un palier doit être supérieur à zéro."))
        return amount
