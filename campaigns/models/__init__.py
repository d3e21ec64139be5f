"""Jauge's domain: fields, constraints and tiny properties. Workflows live in services/.

One module per subject; everything is importable from `campaigns.models`.
"""

from campaigns.models.base import AppendOnlyModel, AppendOnlyQuerySet
from campaigns.models.campaigns import (
    MAX_AMOUNT_MINOR,
    MAX_THANK_DAYS,
    TITLE_MAX_LENGTH,
    Campaign,
    CampaignText,
    CampaignTotal,
    Milestone,
    allowed_origins,
    campaign_text,
    currency_validator,
    days_between,
    origin_is_valid,
    text_in,
    translations_clean,
)
from campaigns.models.donations import RECEIPT_SOURCES, Donation, DonationSource, LedgerEntry, Subscription
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
    "TITLE_MAX_LENGTH",
    "AppendOnlyModel",
    "AppendOnlyQuerySet",
    "AuditLog",
    "BankAccount",
    "Campaign",
    "CampaignText",
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
    "Subscription",
    "TaxReceipt",
    "TaxReceiptDelivery",
    "TaxReceiptLine",
    "TaxReceiptRun",
    "TaxReceiptSequence",
    "TaxReceiptSettings",
    "allowed_origins",
    "campaign_text",
    "currency_validator",
    "days_between",
    "origin_is_valid",
    "text_in",
    "translations_clean",
]
