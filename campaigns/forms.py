"""The reader's donation form. Field names are part of the public contract (DESIGN.md)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.models import MAX_AMOUNT_MINOR, Campaign, Donation
from campaigns.providers import checkouts_available
from campaigns.selectors.tax_receipts import tax_rule

# The honeypot: hidden from people by CSS and aria-hidden, filled in by form-spamming bots.
HONEYPOT_FIELD = "website"
ADDRESS_FIELDS = ("address", "postal_code", "city")


class DonationForm(forms.Form):
    amount = forms.CharField(
        label=_("Montant"),
        max_length=20,
        error_messages={"required": _("Choisissez ou saisissez un montant.")},
    )
    frequency = forms.ChoiceField(
        label=_("Fréquence"),
        choices=Donation.Frequency.choices,
        initial=Donation.Frequency.ONCE,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Choisissez un don ponctuel ou mensuel.")},
    )
    name = forms.CharField(
        label=_("Nom"), max_length=200, error_messages={"required": _("Indiquez votre nom.")}
    )
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        error_messages={
            "required": _("Indiquez votre adresse e-mail : le reçu y sera envoyé."),
            "invalid": _("Cette adresse e-mail n'est pas valide."),
        },
    )
    anonymous = forms.BooleanField(label=_("Donner anonymement"), required=False)
    public_amount = forms.BooleanField(label=_("Afficher le montant de mon don"), required=False)
    message = forms.CharField(
        label=_("Message public (facultatif)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": _("Le message ne peut dépasser %(limit_value)d caractères.")},
    )
    provider = forms.ChoiceField(
        label=_("Moyen de paiement"),
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choisissez un moyen de paiement."),
            "invalid_choice": _("Ce moyen de paiement n'est pas proposé."),
        },
    )
    # The postal address a tax receipt needs: offered only while receipts are on (see __init__).
    address = forms.CharField(label=_("Adresse postale"), max_length=300, required=False)
    postal_code = forms.CharField(label=_("Code postal"), max_length=12, required=False)
    city = forms.CharField(label=_("Ville"), max_length=100, required=False)
    article = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)
    website = forms.CharField(required=False, label=_("Ne pas remplir"))

    def __init__(self, data=None, *, campaign: Campaign, **kwargs):
        if data is not None:
            data = data.copy()
            # Preset radio buttons and the "other amount" box share the contract's `amount`
            # name; the box comes last in the page, so a typed amount wins over a preset.
            typed = [value for value in data.getlist("amount") if value.strip()]
            data["amount"] = typed[-1] if typed else ""
        super().__init__(data, **kwargs)
        self.campaign = campaign
        self.providers = checkouts_available()
        self.fields["provider"].choices = [(p.identifier, p.label) for p in self.providers]
        if self.providers:
            self.fields["provider"].initial = self.providers[0].identifier
        self.tax_rule = tax_rule()
        if self.tax_rule is None:
            for name in ADDRESS_FIELDS:
                del self.fields[name]

    def _fmt(self, amount_minor: int) -> str:
        return money.format_money(amount_minor, self.campaign.currency)

    def clean_amount(self) -> int:
        try:
            amount_minor = money.parse_amount(self.cleaned_data["amount"], self.campaign.currency)
        except money.AmountError:
            raise ValidationError(
                _("« %(value)s » n'est pas un montant : écrivez par exemple 25 ou 25,50."),
                code="invalid",
                params={"value": self.cleaned_data["amount"][:20]},
            ) from None
        if amount_minor < self.campaign.min_amount_minor:
            raise ValidationError(
                _("Le don minimum est de %(min)s."),
                code="min",
                params={"min": self._fmt(self.campaign.min_amount_minor)},
            )
        # The global cap too: a campaign saved before its maximum was bounded must not send an
        # amount the database refuses.
        maximum = min(self.campaign.max_amount_minor, MAX_AMOUNT_MINOR)
        if amount_minor > maximum:
            raise ValidationError(
                _("Le don maximum est de %(max)s."),
                code="max",
                params={"max": self._fmt(maximum)},
            )
        return amount_minor

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())

    def clean_message(self) -> str:
        return self.cleaned_data["message"].strip()

    def clean_article(self) -> str:
        # Hidden and filled by the banner: a bad value must never cost a gift, it is dropped.
        url = self.cleaned_data["article"].strip()
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            return ""
        return url

    def clean(self):
        cleaned = super().clean()
        typed = {name: " ".join((cleaned.get(name) or "").split()) for name in ADDRESS_FIELDS if name in self.fields}
        cleaned.update(typed)
        if any(typed.values()):
            # A receipt needs the whole address: half of one would be refused by the tax office.
            for name, value in typed.items():
                if not value:
                    self.add_error(name, _("Complétez l'adresse (adresse, code postal et ville) pour recevoir un "
                                           "reçu fiscal, ou laissez ces trois champs vides."))
        provider = next((p for p in self.providers if p.identifier == cleaned.get("provider")), None)
        if (
            provider is not None
            and cleaned.get("frequency") == Donation.Frequency.MONTHLY
            and not provider.supports_monthly
        ):
            self.add_error(
                "frequency",
                _("Le don mensuel n'est pas proposé avec ce moyen de paiement (%(provider)s) : mettez en "
                  "place un virement permanent ou choisissez un autre moyen.") % {"provider": provider.label},
            )
        return cleaned

    @property
    def is_spam(self) -> bool:
        return bool((self.data.get(HONEYPOT_FIELD) or "").strip())
