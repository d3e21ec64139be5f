"""Jauge's domain: fields, constraints and tiny properties. Workflows live in services/.

One module per subject; everything is importable from `campaigns.models`.
"""

from campaigns.models.base import AppendOnlyModel, AppendOnlyQuerySet
from campaigns.models.campaigns import (
    MAX_AMOUNT_MINOR,
    MAX_THANK_DAYS,
    Campaign,
    CampaignTotal,
    Milestone,
    allowed_origins,
    currency_validator,
    days_between,
    origin_is_valid,
)
from campaigns.models.donations import RECEIPT_SOURCES, Donation, DonationSource, LedgerEntry
from campaigns.models.events import AuditLog, Heartbeat, PaymentEvent
from campaigns.models.statements import BankAccount, CsvProfile, StatementImport, StatementLine
from campaigns.models.tax_receipts import (
    TaxReceipt,
    TaxReceiptDelivery,
    TaxReceiptLine,
    TaxReceiptRun,
    TaxReceiptSequence,
    TaxReceiptSettings,
)

__all__ = [
    "MAX_AMOUNT_MINOR",
    "MAX_THANK_DAYS",
    "RECEIPT_SOURCES",
    "AppendOnlyModel",
    "AppendOnlyQuerySet",
    "AuditLog",
    "BankAccount",
    "Campaign",
    "CampaignTotal",
    "CsvProfile",
    "Donation",
    "DonationSource",
    "Heartbeat",
    "LedgerEntry",
    "Milestone",
    "PaymentEvent",
    "StatementImport",
    "StatementLine",
    "TaxReceipt",
    "TaxReceiptDelivery",
    "TaxReceiptLine",
    "TaxReceiptRun",
    "TaxReceiptSequence",
    "TaxReceiptSettings",
    "allowed_origins",
    "currency_validator",
    "days_between",
    "origin_is_valid",
]
