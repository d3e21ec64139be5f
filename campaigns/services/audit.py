"""The audit log: who changed money (or personal data), when, what and why."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from campaigns.models import AuditLog


class ReasonRequired(ValueError):
    """A money-changing action without a reason is refused before anything moves."""


def require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("a reason is required")
    return reason


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    actor_label: str = "",
    reason: str = "",
    campaign_id: int | None = None,
    donation_id: int | None = None,
    amount_minor: int | None = None,
    currency: str = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one entry. Call inside the action's transaction: the record and the change
    commit together or not at all. `actor_label` names an actor without an account (a donor
    through their signed link: never their donor key, which a GDPR erasure must be able to unlink)."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditLog.objects.create(
        actor=user,
        actor_username=user.get_username() if user else actor_label[:150],
        action=action,
        reason=reason,
        campaign_id=campaign_id,
        donation_id=donation_id,
        amount_minor=amount_minor,
        currency=currency,
        details=details or {},
    )
