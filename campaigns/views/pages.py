"""Reader pages. The donation page lives with the rest of the donation flow (views/donate.py)."""

from __future__ import annotations

from campaigns.views.donate import campaign_page

__all__ = ["campaign_page"]
