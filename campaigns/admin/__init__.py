"""The editors' panel: the stock admin, extended.

Money never changes here directly: amounts are read-only once created, and manual entries,
refunds and corrections go through the ledger service (via services.backoffice), each with
an audit entry. Permissions come from the Editors and Finance groups (migration 0003).
One module per subject; importing them registers their ModelAdmins.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from campaigns.admin import books, campaigns, donations, statements, tax_receipts  # noqa: F401 (registers the ModelAdmins)

admin.site.site_header = _("Jauge : administration")
admin.site.site_title = "Jauge"
admin.site.index_title = _("Campagnes et dons")
