#!/usr/bin/env python
"""Sign and send a test donation to a running Jauge (the generic webhook of the contract).

    python scripts/send_webhook.py --amount 25,00
    python scripts/send_webhook.py --type donation.refunded --donation don_123 --amount 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from campaigns.signing import SIGNATURE_HEADER, sign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("JAUGE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--secret", default=os.environ.get("GENERIC_WEBHOOK_SECRET", "jauge-dev-secret"))
    parser.add_argument("--campaign", default="mai-juin-2023")
    parser.add_argument("--amount", default="25", help="major units, e.g. 25 or 25,50")
    parser.add_argument("--currency", default="EUR")
    parser.add_argument("--type", default="donation.succeeded",
                        choices=["donation.succeeded", "donation.refunded", "donation.failed"])
    parser.add_argument("--donation", default=None, help="donation id (default: a new one)")
    parser.add_argument("--name", default="Marie")
    parser.add_argument("--email", default="marie@example.org")
    args = parser.parse_args()

    amount_minor = int(Decimal(args.amount.replace(",", ".")) * 100)
    body = json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "type": args.type,
        "data": {
            "donation_id": args.donation or f"don_{uuid.uuid4().hex[:12]}",
            "campaign": args.campaign,
            "amount_minor": amount_minor,
            "currency": args.currency,
            "donor": {"name": args.name, "email": args.email, "anonymous": False},
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    }).encode()
    request = urllib.request.Request(
        f"{args.url.rstrip('/')}/hooks/generic/",
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, args.secret, int(time.time()))},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode())
        return 1
    print(body.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
