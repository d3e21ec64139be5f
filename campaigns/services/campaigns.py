"""Campaign writes: one `campaign_save` for the admin, the seed and any other caller, with the
rules that protect what is already out there; anything that changes what banners show
republishes the snapshot after the commit."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from campaigns import money, progress_cache
from campaigns.models import Campaign, CampaignTotal, Donation, Milestone
from campaigns.services.progress import progress_publish


def campaign_slug_frozen(*, campaign_id: int | None) -> bool:
    """A campaign that is or was live keeps its slug: embeds pasted into articles point at it."""
    if campaign_id is None:
        return False
    status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    return status not in (None, Campaign.Status.DRAFT) or Donation.objects.filter(campaign_id=campaign_id).exists()


def campaign_currency_frozen(*, campaign_id: int | None) -> bool:
    """Money in a currency stays in it: once a campaign has donations its currency is fixed."""
    return campaign_id is not None and Donation.objects.filter(campaign_id=campaign_id).exists()


def campaign_changed(*, campaign_id: int) -> None:
    """Call in the transaction that saved a campaign: banners follow on commit.

    The counter's version is bumped too (under its row lock, after the campaign's): a snapshot's
    version then orders every change it shows, money or text, which the cache relies on."""
    CampaignTotal.objects.filter(campaign_id=campaign_id).update(version=F("version") + 1, updated_at=timezone.now())

    def publish() -> None:
        progress_cache.current_slug_forget()
        progress_publish(campaign_id=campaign_id)

    transaction.on_commit(publish)


def _match_cap_errors(campaign: Campaign) -> dict[str, Any]:
    """A match's cap cannot go below what gifts already used of it (that money is in the ledger).
    The counter is locked for it (campaign row, then counter: the order campaign_changed takes), so
    no gift is matched between this check and the commit."""
    counter = CampaignTotal.objects.select_for_update().filter(campaign_id=campaign.pk)
    used = counter.values_list("matched_minor", flat=True).first() or 0
    if used and (campaign.match_cap_minor or 0) < used:
        return {"match_cap_minor": _("Les dons ont déjà utilisé %(used)s de l'abondement : le plafond ne peut "
                                     "pas descendre en dessous.") % {
            "used": money.format_money(used, campaign.currency, get_language() or "fr")}}
    return {}


def campaign_save(*, campaign: Campaign) -> Campaign:
    """Validate and save a campaign (new or changed), with its counter row; banners refresh on
    commit. Raises ValidationError naming the field: the model's rules, a slug change once the
    campaign was live, a currency change once it has donations."""
    with transaction.atomic():
        campaign.full_clean()
        if campaign.pk is not None:
            stored = Campaign.objects.select_for_update().filter(pk=campaign.pk).values("slug", "currency").first()
            if stored is not None:
                errors = {}
                if stored["slug"] != campaign.slug and campaign_slug_frozen(campaign_id=campaign.pk):
                    errors["slug"] = _("Figé : la campagne a été publiée, ses intégrations utilisent ce slug.")
                if stored["currency"] != campaign.currency and campaign_currency_frozen(campaign_id=campaign.pk):
                    errors["currency"] = _("La devise ne peut plus changer : la campagne a reçu des dons.")
                errors.update(_match_cap_errors(campaign))
                if errors:
                    raise ValidationError(errors)
        campaign.save()
        CampaignTotal.objects.get_or_create(campaign=campaign)
        campaign_changed(campaign_id=campaign.pk)
    return campaign


def campaign_upsert(*, slug: str, defaults: dict[str, Any]) -> tuple[Campaign, bool]:
    """Create or update the campaign with this slug through `campaign_save` (seed, scripts)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(slug=slug).first()
        created = campaign is None
        if created:
            campaign = Campaign(slug=slug)
        for name, value in defaults.items():
            setattr(campaign, name, value)
        return campaign_save(campaign=campaign), created


def milestones_save(*, campaign_id: int, changed: list[Milestone], deleted: list[Milestone]) -> None:
    """Save and delete a campaign's milestones (the admin's inline, scripts); banners refresh on
    commit. Raises ValidationError (amount out of range, an amount used twice): nothing saved.

    The counter is bumped first (its row lock held to the commit), so a ledger change cannot read
    the milestones half-edited. One the total has already passed counts as reached from now,
    without an e-mail: it was not crossed by a gift."""
    if not changed and not deleted:
        return
    with transaction.atomic():
        campaign_changed(campaign_id=campaign_id)
        total_minor = CampaignTotal.objects.filter(campaign_id=campaign_id).values_list("total_minor", flat=True)
        total_minor = total_minor.first() or 0
        Milestone.objects.filter(campaign_id=campaign_id, pk__in=[m.pk for m in deleted if m.pk]).delete()
        stored = dict(Milestone.objects.filter(campaign_id=campaign_id).values_list("pk", "amount_minor"))
        now = timezone.now()
        for milestone in changed:
            milestone.campaign_id = campaign_id
            if milestone.pk is None or stored.get(milestone.pk) != milestone.amount_minor:
                reached = milestone.amount_minor <= total_minor
                milestone.reached_at = milestone.notified_at = now if reached else None
            milestone.full_clean(exclude=["campaign"], validate_unique=False)
        # Unique amounts, on the whole new set (the database constraint would raise a 500 instead).
        final = {**stored, **{m.pk: m.amount_minor for m in changed if m.pk}}
        amounts = list(final.values()) + [m.amount_minor for m in changed if m.pk is None]
        if len(amounts) != len(set(amounts)):
            raise ValidationError({"amount_minor": _("Deux paliers ne peuvent pas avoir le même montant.")})
        for milestone in changed:
            milestone.save()
