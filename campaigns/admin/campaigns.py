"""Campaigns in the admin: the form in major units, the banner preview, the embed snippets."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.forms.formsets import INITIAL_FORM_COUNT, TOTAL_FORM_COUNT
from django.forms.models import BaseInlineFormSet
from django.utils.html import escape, format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.admin.common import money_display
from campaigns.admin_forms import CampaignAdminForm, MilestoneAdminForm, translation_field_names
from campaigns.models import Campaign, Milestone
from campaigns.services.campaigns import campaign_save, milestones_save
from campaigns.views import embed


def embed_snippets(campaign: Campaign) -> list[tuple[str, str, str]]:
    """(id, label, code) of the four ways to put the banner on a page (the public contract)."""
    base = f"{settings.PUBLIC_URL}/embed/{campaign.slug}"
    title = escape(campaign.title)
    return [
        ("script", gettext("Script (recommandé)"), f'<script src="{base}.js" async></script>'),
        (
            "iframe",
            gettext("Iframe"),
            # The relay line (anywhere on the page) lets the frame thank a reader who has just given:
            # the marker lives in the publication's localStorage, which the frame cannot read.
            f'<iframe src="{base}/frame/" title="{title}" style="width:100%;height:140px;border:0" '
            f'loading="lazy"></iframe>\n'
            f'<script src="{base}.js" data-mode="relay" async></script>',
        ),
        (
            "htmx",
            gettext("htmx (hx-get)"),
            # The fragment replaces this div and then polls itself (and stops once the campaign
            # closes): the div must not poll too. htmx 2 refuses other origins unless allowed.
            f"<meta name=\"htmx-config\" content='{{\"selfRequestsOnly\": false}}'>\n"
            f'<link rel="stylesheet" href="{settings.PUBLIC_URL}/static/embed/jauge-embed.css">\n'
            f'<div hx-get="{base}/" hx-trigger="load" hx-swap="outerHTML"></div>',
        ),
        ("svg", gettext("Image SVG (newsletters, RSS)"), f'<img src="{base}.svg" alt="{title}">'),
    ]


class MilestoneFormSet(BaseInlineFormSet):
    """A campaign form posted without the milestones' management form (a script, an older copy of
    the page) changes no milestone, instead of failing as tampered."""

    def __init__(self, data=None, *args, **kwargs):
        prefix = kwargs.get("prefix") or self.get_default_prefix()
        if data is not None and f"{prefix}-{TOTAL_FORM_COUNT}" not in data:
            data = data.copy()
            data.update({f"{prefix}-{TOTAL_FORM_COUNT}": "0", f"{prefix}-{INITIAL_FORM_COUNT}": "0"})
        super().__init__(data, *args, **kwargs)


class MilestoneInline(admin.TabularInline):
    """Milestones (and stretch goals above the goal) the banners announce, in the campaign's form."""

    model = Milestone
    form = MilestoneAdminForm
    formset = MilestoneFormSet
    fields = ("amount_minor", "label", "reached_at")
    readonly_fields = ("reached_at", "amount_display")
    extra = 1
    verbose_name = _("palier")
    verbose_name_plural = _("paliers et objectifs supplémentaires (au-delà de l'objectif)")

    def get_fields(self, request, obj=None):
        # Read-only viewers (Finance) see the amount formatted, not the stored cents.
        if self.has_change_permission(request, obj):
            return self.fields
        return ("amount_display", "label", "reached_at")

    @admin.display(description=_("montant"))
    def amount_display(self, obj: Milestone) -> str:
        return money_display(obj.amount_minor, obj.campaign.currency) if obj.pk else "—"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    inlines = (MilestoneInline,)
    list_display = ("title", "slug", "status", "starts_at", "ends_at", "progress_bar", "total_display")
    list_filter = ("status", "featured")
    list_select_related = ("totals",)
    search_fields = ("title", "slug")
    readonly_fields = ("preview", "snippets")
    fieldsets = (
        (None, {"fields": ("title", "slug", "status", "featured", "locale", "starts_at", "ends_at")}),
        (_("Objectif et montants"), {
            "fields": ("currency", "goal_minor", "preset_amounts_minor", "min_amount_minor", "max_amount_minor",
                       "pending_cap_percent"),
        }),
        (_("Texte et apparence"), {
            "fields": ("appeal", "color_primary", "color_background", "color_text", "font_family", "donor_wall"),
        }),
        (_("Traductions"), {
            "fields": translation_field_names(),
            "description": _("Le titre et le texte d'appel ci-dessus sont dans la langue de la campagne ; "
                             "écrivez ici ceux des autres langues (laissez vide celle de la campagne). Un champ "
                             "vide affiche le texte de la campagne. Bandeaux, pages et e-mails prennent la "
                             "langue du lecteur ou du donateur."),
        }),
        (_("Doublement des dons"), {
            "fields": ("match_sponsor", "match_ratio", "match_cap_minor", "match_starts_at", "match_ends_at"),
            "description": _("Un mécène ajoute N fois chaque don reçu pendant la période, jusqu'à son plafond."),
        }),
        (_("Intégration"), {
            "fields": ("allowed_origins", "poll_interval_seconds", "thank_days", "preview", "snippets"),
        }),
    )

    class Media:
        js = ("campaigns/admin.js",)
        css = {"all": ("campaigns/admin.css",)}

    # Read-only viewers (Finance) see money formatted, not the stored cents.
    money_displays = {"goal_minor": "goal_display", "min_amount_minor": "min_display",
                      "max_amount_minor": "max_display", "preset_amounts_minor": "presets_display",
                      "match_cap_minor": "match_cap_display",
                      # The per-language fields are the form's, not the model's: one read-only list.
                      **dict.fromkeys(translation_field_names(), "translations_display")}

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        displays = self.money_displays
        return [
            (name, {**options, "fields": tuple(dict.fromkeys(displays.get(f, f) for f in options["fields"]))})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return (*readonly, *dict.fromkeys(self.money_displays.values()))
        return readonly

    @admin.display(description=_("objectif"))
    def goal_display(self, obj: Campaign) -> str:
        return money_display(obj.goal_minor, obj.currency)

    @admin.display(description=_("don minimum"))
    def min_display(self, obj: Campaign) -> str:
        return money_display(obj.min_amount_minor, obj.currency)

    @admin.display(description=_("don maximum"))
    def max_display(self, obj: Campaign) -> str:
        return money_display(obj.max_amount_minor, obj.currency)

    @admin.display(description=_("plafond de l'abondement"))
    def match_cap_display(self, obj: Campaign) -> str:
        return money_display(obj.match_cap_minor, obj.currency) if obj.match_cap_minor else "—"

    @admin.display(description=_("montants proposés"))
    def presets_display(self, obj: Campaign) -> str:
        return " · ".join(money_display(amount, obj.currency) for amount in obj.preset_amounts_minor or [])

    @admin.display(description=_("traductions"))
    def translations_display(self, obj: Campaign) -> str:
        languages = dict(settings.LANGUAGES)
        rows = [(languages.get(code, code), texts.get("title", "—"), texts.get("appeal", ""))
                for code, texts in (obj.translations or {}).items()]
        if not rows:
            return "—"
        return format_html_join("", "<p><strong>{}</strong> : {}<br>{}</p>", rows)

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else {"slug": ("title",)}

    def save_model(self, request, obj, form, change):
        campaign_save(campaign=obj)

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        # Milestones are typed in the campaign's currency (the one posted, for a new campaign).
        currency = (request.POST.get("currency") or getattr(obj, "currency", "") or "EUR").strip().upper()
        return {**kwargs, "form_kwargs": {"currency": currency}}

    def save_formset(self, request, form, formset, change):
        if formset.model is not Milestone:
            return super().save_formset(request, form, formset, change)
        changed = formset.save(commit=False)
        milestones_save(campaign_id=form.instance.pk, changed=changed, deleted=list(formset.deleted_objects))
        return None

    @admin.display(description=_("progression"))
    def progress_bar(self, obj: Campaign) -> str:
        total = getattr(obj, "totals", None)
        percent = money.percent(total.total_minor if total else 0, obj.goal_minor)
        return format_html(
            '<span class="jauge-admin-bar" title="{} %"><span style="width:{}%"></span></span> {} %',
            f"{percent:.0f}", f"{min(percent, 100):.1f}", f"{percent:.0f}",
        )

    @admin.display(description=_("total"))
    def total_display(self, obj: Campaign) -> str:
        total = getattr(obj, "totals", None)
        return format_html(
            "{} / {}",
            money_display(total.total_minor if total else 0, obj.currency),
            money_display(obj.goal_minor, obj.currency),
        )

    @admin.display(description=_("aperçu du bandeau"))
    def preview(self, obj: Campaign) -> str:
        if not obj.pk:
            return gettext("Enregistrez la campagne pour voir l'aperçu.")
        return format_html(
            '<div class="jauge-preview"><iframe id="jauge-preview" src="/embed/{}/frame/?preview={}" title="{}" '
            'loading="lazy"></iframe><button type="button" class="button" data-jauge-reload="jauge-preview">{}'
            "</button></div>",
            obj.slug, embed.preview_token(obj.slug), gettext("Aperçu du bandeau"), gettext("Recharger l'aperçu"),
        )

    @admin.display(description=_("codes d'intégration"))
    def snippets(self, obj: Campaign) -> str:
        if not obj.pk:
            return gettext("Enregistrez la campagne pour obtenir les codes d'intégration.")
        return format_html_join(
            "",
            '<div class="jauge-snippet"><label for="snippet-{0}">{1}</label>'
            '<textarea id="snippet-{0}" rows="2" readonly>{2}</textarea>'
            '<button type="button" class="button" data-jauge-copy="snippet-{0}" data-done="{3}" data-failed="{4}">'
            "{5}</button></div>",
            (
                (key, label, code, gettext("Copié !"), gettext("Copie impossible : sélectionnez le texte"),
                 gettext("Copier"))
                for key, label, code in embed_snippets(obj)
            ),
        )
