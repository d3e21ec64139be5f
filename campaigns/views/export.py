"""Streaming CSV export of donations (the admin decides which ones and who may)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from campaigns.models import Donation
from campaigns.selectors.export import donations_csv


def donations_csv_response(*, queryset: QuerySet[Donation], name: str = "dons") -> StreamingHttpResponse:
    filename = f"{name}-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(donations_csv(queryset=queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
