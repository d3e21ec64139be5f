"""A donor asks for a fresh *Mes dons* link (theirs expired, or the e-mail is lost).

No account enumeration: the page answers the same whether or not the address gave, and takes the
same time (the lookup and the e-mail happen in a worker, the request only enqueues a key). The
broker carries the keyed hash, never the address: the worker reads the address from the donations.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from campaigns import queue
from campaigns.models import Donation
from campaigns.services import donor_links, ledger

logger = logging.getLogger(__name__)



def donor_link_request(*, email: str, locale: str) -> None:
    """Enqueue the e-mail of a fresh link to `email` (sent only if that address gave)."""
    email = (email or "").strip()
    if not email:
        return
    if locale not in dict(settings.LANGUAGES):
        locale = settings.LANGUAGE_CODE
    queue.send("send_donor_link", ledger.donor_key_for(email=email), locale)


def donor_link_send(*, donor_key: str, locale: str) -> bool:
    """E-mail the link to the address behind `donor_key`, if any donation has it. False otherwise."""
    donor_email = (
        Donation.objects.filter(donor_key=donor_key).exclude(donor_email="")
        .order_by("-created_at").values_list("donor_email", flat=True).first()
    )
    if not donor_links.names_an_address(donor_key) or not donor_email:
        return False
    with translation.override(locale):
        context = {"url": donor_links.donor_link_url(donor_key=donor_key), "days": settings.DONOR_LINK_DAYS}
        subject = render_to_string("emails/donor_link_subject.txt", context).strip()
        body = render_to_string("emails/donor_link.txt", context)
    EmailMessage(subject=subject, body=body, to=[donor_email]).send()
    return True
