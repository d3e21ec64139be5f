"""Statement import: parse a bank file and store its lines, whole or not at all; matching follows.

Store first, match after: a file's lines are committed in one transaction (an error anywhere
rolls everything back and names the line or element), then a worker matches them
(services/statement_matching.py). Re-importing a file, or an overlapping one, adds nothing: each
line's key is account + booking date + amount + currency + bank reference + normalised text, and
its occurrence index numbers identical lines within the file (two equal gifts on one day count twice).
The store holds one batch of lines at a time: its memory does not grow with the file (the
occurrences so far are counted in PostgreSQL, see _Occurrences).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from campaigns import money, queue
from campaigns.bank import parse_statement
from campaigns.bank.csv import CsvProfile as ParserCsvProfile
from campaigns.bank.records import StatementError, StatementRecord
from campaigns.models import AuditLog, BankAccount, CsvProfile, StatementImport, StatementLine
from campaigns.services.audit import audit_record

logger = logging.getLogger(__name__)

STORE_BATCH = 2000
# Far above any real movement; keeps a garbled amount from overflowing the column.
MAX_LINE_AMOUNT_MINOR = 10**15


class StatementTooLarge(StatementError):
    """The file is over STATEMENT_MAX_BYTES: refused before it is read or parsed."""


@dataclass(frozen=True)
class ImportResult:
    statement_import: StatementImport
    lines_read: int
    lines_new: int


def statement_size_check(*, size: int) -> None:
    limit = settings.STATEMENT_MAX_BYTES
    if size > limit:
        raise StatementTooLarge(f"file of {size} bytes is over the limit of {limit} bytes (STATEMENT_MAX_BYTES)")


def iban_normalize(value: str) -> str:
    """IBANs compact and upper-case; other account numbers without spaces."""
    compact = "".join((value or "").split()).upper()
    if not compact:
        return ""
    try:
        return IBAN(compact).compact
    except SchwiftyException:
        return compact


@functools.lru_cache(maxsize=256)
def _account_normalize(value: str) -> str:
    # Every record of a statement names the same account or two: validated once, not per line
    # (schwifty's validation was a sixth of a re-import's time).
    return iban_normalize(value)


def _csv_column(value: str) -> str | int | None:
    """A saved column: its header name, or its 0-based position written as digits."""
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


def _csv_options(profile: CsvProfile) -> ParserCsvProfile:
    """The parser's CsvProfile from the one an editor saved (field by field, validated).

    The saved `skip_rows` counts the header row too (what an editor sees in a spreadsheet):
    0 means no header, and then columns are positions.
    """
    columns = {name: _csv_column(getattr(profile, name))
               for name in ("date_column", "amount_column", "debit_column", "credit_column", "payer_column",
                            "reference_column")}
    label = _csv_column(profile.label_column)
    options = {
        "name": profile.name,
        "encoding": profile.encoding or "auto",
        "delimiter": profile.delimiter,
        "decimal_separator": profile.decimal_separator,
        "thousands_separator": profile.thousands_separator,
        "date_format": profile.date_format,
        "has_header": profile.skip_rows > 0,
        "skip_rows": max(profile.skip_rows - 1, 0),
        "label_columns": [label] if label is not None else [],
        "currency": profile.currency,
        "account": profile.bank_account.number if profile.bank_account_id else "",
        # "columns" (separate Débit/Crédit) takes each sign from its column: the parser's default.
        "sign_convention": "signed" if profile.sign_convention == CsvProfile.Sign.COLUMNS else profile.sign_convention,
        **columns,
    }
    return ParserCsvProfile.from_dict(options)


def _dedup_key(account: str, record: StatementRecord, amount_minor: int, text: str) -> str:
    normalised = " ".join(text.casefold().split())
    parts = (account, record.booking_date.isoformat(), str(amount_minor), record.currency,
             record.bank_reference.strip(), normalised)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _amount_minor(record: StatementRecord) -> int:
    if not money.is_known_currency(record.currency or ""):
        raise StatementError(f"unknown currency {record.currency!r}", line=record.line)
    minor = record.amount.scaleb(money.minor_digits(record.currency))
    if minor != minor.to_integral_value():
        raise StatementError(f"amount {record.amount} has more decimals than {record.currency} allows",
                             line=record.line)
    if abs(minor) >= MAX_LINE_AMOUNT_MINOR:
        raise StatementError(f"amount {record.amount} is out of range", line=record.line)
    return int(minor)


class _Occurrences:
    """How many lines of this file had each key so far: the occurrence index of the next one.

    A file's identical lines can be anywhere in it (a file need not be in date order, and a busy
    day can hold all of its lines), so the count is kept for every key of the file. On PostgreSQL
    it is kept in a temporary table, private to the import's connection and dropped with its
    transaction: the import's memory stays one batch whatever the file's length (a dict of 100,000
    keys was the import's +26 MB at 100,000 lines). Elsewhere (SQLite in development) a dict.
    """

    TABLE = "jauge_statement_occurrence"

    def __init__(self) -> None:
        self.in_database = connection.vendor == "postgresql"
        self.seen: dict[str, int] = {}
        if self.in_database:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE TEMPORARY TABLE {self.TABLE} (dedup_key varchar(64) PRIMARY KEY, "
                               "seen integer NOT NULL) ON COMMIT DROP")

    def number(self, keys: list[str]) -> list[int]:
        """The occurrence index of each of a batch's keys (in file order), counted as seen."""
        in_batch = Counter(keys)
        if self.in_database:
            with connection.cursor() as cursor:
                # One statement a batch: add the batch's counts, read back each key's new count.
                cursor.execute(
                    f"INSERT INTO {self.TABLE} AS counted (dedup_key, seen) "  # noqa: S608
                    "SELECT * FROM unnest(%s::varchar[], %s::integer[]) "
                    "ON CONFLICT (dedup_key) DO UPDATE SET seen = counted.seen + EXCLUDED.seen "
                    "RETURNING dedup_key, seen",
                    [list(in_batch), list(in_batch.values())],
                )
                before = {key: seen - in_batch[key] for key, seen in cursor.fetchall()}
        else:
            before = {key: self.seen.get(key, 0) for key in in_batch}
            self.seen.update((key, before[key] + n) for key, n in in_batch.items())
        numbers = []
        for key in keys:
            numbers.append(before[key])
            before[key] += 1
        return numbers

    def close(self) -> None:
        # Dropped at once: a caller's outer transaction (a test, a script) may import twice.
        if self.in_database:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE {self.TABLE}")


def _known_keys(keys: set[str]) -> set[tuple[str, int]]:
    """(key, occurrence) of the lines already stored under these keys."""
    if connection.vendor != "postgresql":
        return set(StatementLine.objects.filter(dedup_key__in=keys).values_list("dedup_key", "occurrence"))
    # One array parameter rather than Django's IN of 2,000: 20 ms a batch instead of 60.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT dedup_key, occurrence FROM {StatementLine._meta.db_table} "  # noqa: S608
                       "WHERE dedup_key = ANY(%s::varchar[])", [list(keys)])
        return set(cursor.fetchall())


class _Store:
    """Turns records into unsaved lines and inserts them in batches (existing keys skipped)."""

    def __init__(self, statement_import: StatementImport, default_account: str):
        self.statement_import = statement_import
        self.default_account = default_account
        self.accounts: dict[str, int] = {}
        self.occurrences: _Occurrences | None = None
        self.batch: list[tuple] = []
        self.read = 0

    def account_id(self, number: str) -> int:
        if number not in self.accounts:
            self.accounts[number] = BankAccount.objects.get_or_create(number=number)[0].pk
        return self.accounts[number]

    def add(self, record: StatementRecord) -> None:
        self.read += 1
        signed = _amount_minor(record)
        account = _account_normalize(record.account) or self.default_account
        text = "\n".join(t for t in record.texts if t)
        self.batch.append((record, _dedup_key(account, record, signed, text), signed, account, text))
        if len(self.batch) >= STORE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        if self.occurrences is None:
            self.occurrences = _Occurrences()
        numbers = self.occurrences.number([item[1] for item in self.batch])
        # Lines an earlier import stored are skipped before any model is built (a re-import or an
        # overlapping statement costs a lookup per batch); ON CONFLICT DO NOTHING covers a
        # concurrent import of the same lines.
        known = _known_keys({item[1] for item in self.batch})
        lines = [
            self._line(record, key, occurrence, signed, account, text)
            for (record, key, signed, account, text), occurrence in zip(self.batch, numbers, strict=True)
            if (key, occurrence) not in known
        ]
        if lines:
            StatementLine.objects.bulk_create(lines, ignore_conflicts=True)
        self.batch = []

    def close(self) -> None:
        self.flush()
        if self.occurrences is not None:
            self.occurrences.close()
            self.occurrences = None

    def _line(self, record: StatementRecord, key: str, occurrence: int, signed: int, account: str,
              text: str) -> StatementLine:
        return StatementLine(
            statement_import=self.statement_import,
            bank_account_id=self.account_id(account),
            dedup_key=key,
            occurrence=occurrence,
            source_line=record.line,
            booking_date=record.booking_date,
            value_date=record.value_date,
            direction=StatementLine.Direction.CREDIT if signed > 0 else StatementLine.Direction.DEBIT,
            amount_minor=abs(signed),
            currency=record.currency,
            bank_reference=record.bank_reference[:255],
            payer_name=record.payer_name[:255],
            payer_iban=iban_normalize(record.payer_iban)[:64],
            text=text,
            raw=record.raw,
        )


def _records(data: bytes, *, format: str, profile: CsvProfile | None,  # noqa: A002
             builtin_profile: str | None = None) -> Iterable[StatementRecord]:
    options = {}
    if format == "csv":
        if profile is not None:
            options["profile"] = _csv_options(profile)
        elif builtin_profile:
            options["profile"] = builtin_profile  # the parser refuses a name it does not know
        else:
            raise StatementError("a CSV statement needs a profile (--profile NAME)")
    try:
        yield from parse_statement(data, format=format, **options)
    except StatementError:
        raise
    except (UnicodeError, LookupError) as exc:
        raise StatementError(f"cannot decode the file: {exc}") from None


def _same_file_imported(*, sha256: str, format: str, profile: CsvProfile | None) -> StatementImport | None:  # noqa: A002
    """An earlier import of these exact bytes, read the same way, whose lines were stored (lines
    are never deleted, not even by an undo): importing it again cannot add a line."""
    return (
        StatementImport.objects.filter(sha256=sha256, format=format, profile=profile, lines_read__gt=0)
        .exclude(status=StatementImport.Status.FAILED).order_by("pk").first()
    )


def statement_import(
    *,
    data: bytes,
    file_name: str,
    format: str,  # noqa: A002
    profile_id: int | None = None,
    builtin_profile: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> ImportResult:
    """Store every line of a statement file in one transaction, then enqueue its matching.

    A CSV file is read through a saved profile (`profile_id`) or a built-in one of the parser
    (`builtin_profile`, a `campaigns.bank.csv.PROFILES` name). A bad file raises StatementError
    (its message names the line or element): nothing of it is stored, and a `failed` import
    records the attempt and the reason for the editors.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    profile = CsvProfile.objects.select_related("bank_account").get(pk=profile_id) if profile_id else None
    started = time.monotonic()
    try:
        statement_size_check(size=len(data))
        with transaction.atomic():
            imported = StatementImport.objects.create(
                file_name=file_name[:255], sha256=sha256, size_bytes=len(data), format=format, profile=profile,
                uploaded_by=actor if actor is not None and actor.is_authenticated else None,
            )
            default_account = profile.bank_account.number if profile and profile.bank_account else ""
            store = _Store(imported, default_account)
            # A built-in profile leaves no trace on the import to compare: such a file is always
            # read (its known lines are still skipped by their keys).
            same_file = None if builtin_profile else _same_file_imported(sha256=sha256, format=format,
                                                                         profile=profile)
            if same_file is not None:
                # The very same bytes were stored before: every line is known, nothing to parse.
                store.read = same_file.lines_read
            else:
                for record in _records(data, format=format, profile=profile, builtin_profile=builtin_profile):
                    store.add(record)
                store.close()
            if store.read == 0:
                raise StatementError("the file holds no movement")
            new = StatementLine.objects.filter(statement_import=imported).count()
            imported.lines_read, imported.lines_new, imported.stored_at = store.read, new, timezone.now()
            if new == 0:
                imported.status, imported.finished_at = StatementImport.Status.DONE, imported.stored_at
            imported.save()
            audit_record(
                actor=actor, action=AuditLog.Action.STATEMENT_IMPORT, reason=file_name[:255],
                details={"import_id": imported.pk, "format": format, "sha256": sha256, "lines_read": store.read,
                         "lines_new": new, **({"builtin_profile": builtin_profile} if builtin_profile else {})},
            )
            if new:
                tasks = min(settings.STATEMENT_MATCH_TASKS, -(-new // settings.STATEMENT_MATCH_BATCH))
                for _ in range(tasks):
                    queue.send("match_statement", imported.pk)
    except StatementError as exc:
        StatementImport.objects.create(
            file_name=file_name[:255], sha256=sha256, size_bytes=len(data), format=format, profile=profile,
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
            status=StatementImport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now(),
        )
        raise
    logger.info("statement %s: %d lines read, %d new, stored in %.1fs", file_name, store.read, new,
                time.monotonic() - started)
    return ImportResult(statement_import=imported, lines_read=store.read, lines_new=new)


def statement_import_summary(*, import_id: int) -> dict:
    """Lines, credits, debits and the count and sum per outcome, for the admin and the command."""
    from django.db.models import Count, Sum

    imported = StatementImport.objects.get(pk=import_id)
    rows = (
        StatementLine.objects.filter(statement_import_id=import_id)
        .values("outcome", "direction", "currency")
        .annotate(n=Count("id"), total=Sum("amount_minor"))
        .order_by()
    )
    outcomes: dict[str, dict] = {}
    credits = debits = 0
    for row in rows:
        entry = outcomes.setdefault(row["outcome"], {"count": 0, "sums": {}})
        entry["count"] += row["n"]
        entry["sums"][row["currency"]] = entry["sums"].get(row["currency"], 0) + row["total"]
        if row["direction"] == StatementLine.Direction.CREDIT:
            credits += row["n"]
        else:
            debits += row["n"]
    elapsed = None
    if imported.matching_started_at:
        elapsed = ((imported.finished_at or timezone.now()) - imported.matching_started_at).total_seconds()
    rate = imported.lines_processed / elapsed if elapsed else None
    remaining = max(imported.lines_new - imported.lines_processed, 0)
    return {
        "import": imported,
        "lines_read": imported.lines_read,
        "lines_new": imported.lines_new,
        "lines_already_imported": imported.lines_read - imported.lines_new,
        "credits": credits,
        "debits": debits,
        "processed": imported.lines_processed,
        "percent": round(100 * imported.lines_processed / imported.lines_new, 1) if imported.lines_new else 100.0,
        "lines_per_second": round(rate, 1) if rate else None,
        "eta_seconds": round(remaining / rate) if rate and remaining else (0 if not remaining else None),
        "outcomes": {
            outcome: outcomes.get(outcome, {"count": 0, "sums": {}}) for outcome in StatementLine.Outcome.values
        },
    }
