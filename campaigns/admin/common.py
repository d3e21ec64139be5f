"""What the admin modules share: money shown in the editor's language, read-only books."""

from __future__ import annotations

from django.contrib import admin

from campaigns import money


def money_display(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "—"
    return money.format_money(amount_minor, currency)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
