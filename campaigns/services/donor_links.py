"""The signed link to *Mes dons*: a donor's gifts, without an account or a password.

The link names the donor's identity (`donor_key`, a keyed hash of their e-mail: no personal data
in the URL) signed with SECRET_KEY and a timestamp; it opens the page for DONOR_LINK_DAYS. Every
receipt e-mail carries a fresh one, and /mes-dons/ e-mails a new one on request. A GDPR erasure
replaces the donations' donor_key, so its old links show nothing afterwards.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "jauge.mes-dons"


class DonorLinkError(Exception):
    """A link that opens nothing: `reason` is `invalid` (tampered, truncated) or `expired`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def donor_link_token(*, donor_key: str) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(donor_key)


def names_an_address(donor_key: str) -> bool:
    """Only a donor known by an e-mail address has gifts to gather (`d:` keys are one gift each)."""
    return donor_key.startswith("e:")


def donor_link_url(*, donor_key: str) -> str:
    """The donor's *Mes dons* link; '' for a donor known by no address (nothing to gather)."""
    if not names_an_address(donor_key):
        return ""
    return f"{settings.PUBLIC_URL}{reverse('mes-dons', kwargs={'token': donor_link_token(donor_key=donor_key)})}"


def donor_key_from_token(*, token: str) -> str:
    """The donor a link names, if it is authentic and not expired."""
    try:
        donor_key = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=timedelta(days=settings.DONOR_LINK_DAYS))
    except signing.SignatureExpired:
        raise DonorLinkError("expired") from None
    except signing.BadSignature:
        raise DonorLinkError("invalid") from None
    if not names_an_address(donor_key):
        raise DonorLinkError("invalid")
    return donor_key
