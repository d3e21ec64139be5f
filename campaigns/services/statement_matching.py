"""Matching stored statement lines to pledges, in batches, in a worker: safe to run twice.

A batch is claimed with SELECT … FOR UPDATE SKIP LOCKED on pending lines (a second worker takes
the next batch; a killed worker's locks go with its connection and the sweeper re-enqueues the
import). The batch's applied lines confirm their pledges through the ledger service in one call
per campaign (`ledger.donations_confirm`, a few statements for the whole batch) inside the batch's
transaction; if it fails, the batch is redone with a savepoint per line, so one line at fault
goes to review alone. The campaign's progress is published once per batch, after its commit.

Rules, for a credit:
1. a pledge reference anywhere in the line's texts (case, spaces, line breaks, hyphens, O/0 and
   I/1 tolerated): an exact one, or a corrected one only when it is the single valid candidate;
   paid already → duplicate (no ledger entry); other currency, partial or over-payment → review;
   expired → still confirmed (late money counts);
2. else a scored suggestion (amount, date, payer name/IBAN) against pending bank pledges and
   known donors: applied alone above STATEMENT_SUGGEST_AUTO_SCORE with no rival, else review;
a debit is listed, never applied; one that returns a matched gift goes to review with a refund.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from rapidfuzz import fuzz

from campaigns import queue
from campaigns.bank.reference_search import find_reference_candidates
from campaigns.models import Donation, StatementImport, StatementLine
from campaigns.services import ledger

logger = logging.getLogger(__name__)

Outcome = StatementLine.Outcome
PAID = (Donation.Status.CONFIRMED, Donation.Status.REFUNDED)
# Pledges still waiting for money: expired ones too (a late transfer still counts).
PAYABLE = (Donation.Status.PENDING, Donation.Status.EXPIRED, Donation.Status.FAILED)
SHOWN_SCORE = 30  # suggestions shown to the editor from this score
MAX_SUGGESTIONS = 5
LINE_FIELDS = ["outcome", "matched_by", "reason", "suggestions", "donation"]


def booked_at(line: StatementLine) -> datetime:
    # Noon: the booking day stays the same day in every time zone the admin shows.
    return timezone.make_aware(datetime.combine(line.booking_date, time(12)))


def _name(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


@dataclass
class _Batch:
    """What one batch's decisions read, fetched in a few queries for all its lines."""

    lines: list[StatementLine]
    candidates: dict[int, list] = field(default_factory=dict)  # line id → reference candidates
    by_reference: dict[str, Donation] = field(default_factory=dict)
    pledges_by_amount: dict[tuple[int, str], list[Donation]] = field(default_factory=lambda: defaultdict(list))
    donors_by_iban: dict[str, Donation] = field(default_factory=dict)
    returned: dict[tuple[str, int], int] = field(default_factory=dict)  # (payer iban, amount) → donation id
    # Each campaign's counter, locked once for the batch (the ledger moves it in memory and saves).
    totals: dict[int, object] = field(default_factory=dict)
    campaign_of: dict[int, int] = field(default_factory=dict)  # pledge id → campaign id
    careful: bool = False  # a savepoint per applied line (the retry of a batch that failed)

    to_apply: list[tuple[StatementLine, int, str]] = field(default_factory=list)

    @classmethod
    def load(cls, lines: list[StatementLine], careful: bool) -> _Batch:
        batch = cls(lines, careful=careful)
        references: set[str] = set()
        for line in lines:
            found = find_reference_candidates(f"{line.text}\n{line.bank_reference}")
            batch.candidates[line.pk] = found
            references.update(c.reference for c in found)
        if references:
            batch.by_reference = {d.reference: d for d in Donation.objects.filter(reference__in=references)}
            batch.campaign_of.update((d.pk, d.campaign_id) for d in batch.by_reference.values())
        # Suggestions are for credits without a known reference: only their amounts are looked up.
        amounts = {
            line.amount_minor for line in lines
            if line.direction == StatementLine.Direction.CREDIT
            and not any(c.reference in batch.by_reference for c in batch.candidates[line.pk])
        }
        if amounts:
            pledges = Donation.objects.filter(
                source=Donation.Source.BANK, status__in=PAYABLE, amount_minor__in=amounts
            ).only("id", "campaign_id", "amount_minor", "currency", "donor_name", "donor_key", "created_at",
                   "reference", "status", "source").order_by()  # no sort: the scores order them
            for pledge in pledges:
                batch.pledges_by_amount[(pledge.amount_minor, pledge.currency)].append(pledge)
                batch.campaign_of[pledge.pk] = pledge.campaign_id
        ibans = {line.payer_iban for line in lines if line.payer_iban}
        if ibans:
            known = (
                StatementLine.objects.filter(payer_iban__in=ibans, direction=StatementLine.Direction.CREDIT,
                                             outcome=Outcome.MATCHED, donation__isnull=False)
                .select_related("donation").order_by("id")
            )
            for previous in known:
                batch.donors_by_iban[previous.payer_iban] = previous.donation
                if previous.donation.status == Donation.Status.CONFIRMED:
                    batch.returned[(previous.payer_iban, previous.amount_minor)] = previous.donation_id
        return batch


def _suggestion(kind: str, donation: Donation, score: int, label: str) -> dict:
    return {"kind": kind, "donation_id": donation.pk, "reference": donation.reference or "", "score": score,
            "campaign_id": donation.campaign_id, "label": label}


def _score(line: StatementLine, pledge: Donation, known: Donation | None) -> int:
    """0-100: payer name or IBAN 60, date 25, amount 15 (candidates have the exact amount)."""
    if known is not None and known.donor_key == pledge.donor_key and not known.donor_key.startswith("d:"):
        name = 100.0  # the same account paid this donor's earlier gift
    elif line.payer_name and pledge.donor_name:
        # Names that do not look alike say nothing (0), rather than a little.
        name = fuzz.token_sort_ratio(_name(line.payer_name), _name(pledge.donor_name), score_cutoff=60)
    else:
        name = 0.0
    days = (line.booking_date - timezone.localtime(pledge.created_at).date()).days
    if days < -1:
        return 0  # money booked before the pledge existed: not this pledge
    date = 100.0 if days <= 3 else max(0.0, 100.0 * (30 - days) / 27)
    return round(0.60 * name + 0.25 * date + 15)


def _decide_debit(line: StatementLine, batch: _Batch) -> None:
    line.outcome = Outcome.DEBIT
    donation_id = batch.returned.get((line.payer_iban, line.amount_minor)) if line.payer_iban else None
    found = [batch.by_reference[c.reference] for c in batch.candidates[line.pk] if c.reference in batch.by_reference]
    paid = [d for d in found if d.status == Donation.Status.CONFIRMED]
    if donation_id is None and paid:
        donation_id = paid[0].pk
    if donation_id is not None:
        donation = Donation.objects.get(pk=donation_id)
        line.outcome = Outcome.REVIEW
        line.reason = "returned transfer of a matched gift: refund it?"
        line.suggestions = [_suggestion("refund", donation, 100, f"refund {donation}")]


def _apply(line: StatementLine, pledge_id: int, matched_by: str, batch: _Batch) -> None:
    """Decided: this line pays that pledge. Applied with the batch's others (_apply_all)."""
    line.outcome = Outcome.MATCHED
    batch.to_apply.append((line, pledge_id, matched_by))


def _apply_all(batch: _Batch) -> None:
    """Confirm the decided pledges through the ledger: counters, then pledges, locked in one
    query each, in id order (the ledger's lock order, and no deadlock between batches)."""
    if not batch.to_apply:
        return
    pledge_ids = sorted({pledge_id for _line, pledge_id, _by in batch.to_apply})
    for campaign_id in sorted({batch.campaign_of[pledge_id] for pledge_id in pledge_ids}):
        batch.totals[campaign_id] = ledger.total_lock(campaign_id=campaign_id)
    locked = {d.pk: d for d in Donation.objects.select_for_update().filter(pk__in=pledge_ids).order_by("pk")}
    claimed: set[int] = set()
    confirmations: dict[int, list] = defaultdict(list)  # campaign id → [(pledge, booked at)]
    for line, pledge_id, matched_by in batch.to_apply:
        pledge = locked[pledge_id]
        if pledge.status in PAID or pledge_id in claimed:
            # Paid meanwhile, or by an earlier line of this batch: listed, never counted twice.
            if matched_by == StatementLine.MatchedBy.SUGGESTION:
                line.outcome, line.reason = Outcome.REVIEW, f"suggested pledge {pledge} was paid meanwhile"
                line.suggestions = [_suggestion("pledge", pledge, 0, str(pledge))]
            else:
                line.outcome, line.donation, line.reason = Outcome.DUPLICATE, pledge, f"{pledge} already paid"
            continue
        claimed.add(pledge_id)
        if not batch.careful:
            # Confirmed together below: one ledger call per campaign for the whole batch.
            confirmations[pledge.campaign_id].append((pledge, booked_at(line)))
            line.outcome, line.matched_by, line.donation = Outcome.MATCHED, matched_by, pledge
            continue
        total = batch.totals[pledge.campaign_id]
        try:
            with transaction.atomic():  # a savepoint: a line that fails rolls back alone
                ledger.donation_confirm(total=total, donation=pledge, at=booked_at(line))
        except (ledger.LedgerError, DatabaseError) as exc:
            line.outcome, line.reason = Outcome.REVIEW, f"ledger refused: {exc}"[:500]
            total.refresh_from_db()  # its savepoint rolled back what the ledger moved in memory
            pledge.refresh_from_db()
            continue
        line.outcome, line.matched_by, line.donation = Outcome.MATCHED, matched_by, pledge
    # A refusal here fails the batch, which is redone with a savepoint per line (_match_batch_safely).
    for campaign_id, pledges in confirmations.items():
        ledger.donations_confirm(total=batch.totals[campaign_id], confirmations=pledges)


def _decide_by_pledge(line: StatementLine, pledge: Donation, matched_by: str, batch: _Batch) -> None:
    if pledge.status in PAID:
        line.outcome, line.donation, line.reason = Outcome.DUPLICATE, pledge, f"{pledge} already paid"
        return
    problem = ""
    if pledge.source != Donation.Source.BANK:
        problem = f"reference of a {pledge.source} pledge, not a bank transfer"
    elif pledge.currency != line.currency:
        problem = f"currency {line.currency}, pledge {pledge} is in {pledge.currency}"
    elif line.amount_minor < pledge.amount_minor:
        problem = f"partial payment: {line.amount_minor} of {pledge.amount_minor} for {pledge}"
    elif line.amount_minor > pledge.amount_minor:
        problem = f"over-payment: {line.amount_minor} for {pledge.amount_minor} pledged ({pledge})"
    if problem:
        line.outcome, line.reason = Outcome.REVIEW, problem
        line.suggestions = [_suggestion("pledge", pledge, 100, str(pledge))]
        return
    _apply(line, pledge.pk, matched_by, batch)


def _decide_credit(line: StatementLine, batch: _Batch) -> None:
    candidates = batch.candidates[line.pk]
    known = [c for c in candidates if c.reference in batch.by_reference]
    exact = {c.reference for c in known if not c.corrected}
    if len(exact) == 1:
        _decide_by_pledge(line, batch.by_reference[exact.pop()], StatementLine.MatchedBy.REFERENCE, batch)
        return
    if len(exact) > 1 or (known and len(candidates) > 1):
        line.outcome = Outcome.REVIEW
        line.reason = "several references: " + ", ".join(sorted(c.reference for c in known))
        line.suggestions = [_suggestion("pledge", batch.by_reference[c.reference], 100, c.reference) for c in known]
        return
    if known:  # one candidate, read through a correction: it is the one valid reference
        line.reason = f"reference read as {known[0].reference} (corrected)"
        _decide_by_pledge(line, batch.by_reference[known[0].reference], StatementLine.MatchedBy.REFERENCE, batch)
        return
    _decide_by_suggestion(line, batch, unknown=[c.reference for c in candidates])


def _decide_by_suggestion(line: StatementLine, batch: _Batch, unknown: list[str]) -> None:
    known = batch.donors_by_iban.get(line.payer_iban) if line.payer_iban else None
    scored = sorted(
        ((_score(line, pledge, known), pledge) for pledge in batch.pledges_by_amount.get(
            (line.amount_minor, line.currency), ())),
        key=lambda pair: (-pair[0], pair[1].pk),
    )
    suggestions = [_suggestion("pledge", p, s, f"{p} {p.donor_name}".strip()) for s, p in scored if s >= SHOWN_SCORE]
    if known is not None:
        suggestions.append(_suggestion("donor", known, 0, f"new gift from the donor of {known}"))
    best = scored[0][0] if scored else 0
    rival = scored[1][0] if len(scored) > 1 else 0
    if best >= settings.STATEMENT_SUGGEST_AUTO_SCORE and rival < settings.STATEMENT_SUGGEST_MIN_SCORE:
        _decide_by_pledge(line, scored[0][1], StatementLine.MatchedBy.SUGGESTION, batch)
        if line.outcome == Outcome.MATCHED:
            return
        line.reason = ""
    line.outcome = Outcome.REVIEW
    line.suggestions = suggestions[:MAX_SUGGESTIONS] + ([suggestions[-1]] if known and len(suggestions) >
                                                       MAX_SUGGESTIONS else [])
    line.reason = line.reason or (
        f"unknown reference {', '.join(unknown)}" if unknown
        else "no reference; suggestions to check" if suggestions else "no reference, no matching pledge"
    )


def _decide(line: StatementLine, batch: _Batch) -> None:
    try:
        if line.direction == StatementLine.Direction.DEBIT:
            _decide_debit(line, batch)
        else:
            _decide_credit(line, batch)
    except ledger.LedgerError as exc:
        line.outcome, line.reason = Outcome.REVIEW, f"refused: {exc}"[:500]


def _lines_save(lines: list[StatementLine]) -> None:
    """Write the batch's decisions in one statement (Django's bulk_update builds a CASE per
    column, slower than the matching itself on PostgreSQL)."""
    if connection.vendor != "postgresql":
        StatementLine.objects.bulk_update(lines, LINE_FIELDS)
        return
    rows = [(line.pk, line.outcome, line.matched_by, line.reason[:500], json.dumps(line.suggestions),
             line.donation_id) for line in lines]
    placeholders = ", ".join(["(%s, %s, %s, %s, %s::jsonb, %s::bigint)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {StatementLine._meta.db_table} AS line SET outcome = v.outcome, matched_by = v.matched_by, "  # noqa: S608
            "reason = v.reason, suggestions = v.suggestions, donation_id = v.donation_id "
            f"FROM (VALUES {placeholders}) AS v(id, outcome, matched_by, reason, suggestions, donation_id) "
            "WHERE line.id = v.id",
            [value for row in rows for value in row],
        )


def _match_batch(import_id: int, size: int, after_id: int, careful: bool = False) -> tuple[int, int]:
    """Decide the next batch of pending lines with an id above `after_id`; returns (lines decided,
    last id). The bound lets each claim start where the last one ended instead of walking past
    the lines already decided (with _statistics_refresh: 57 → ~1 ms a claim at 100k lines)."""
    with transaction.atomic():
        lines = list(
            StatementLine.objects.select_for_update(skip_locked=True)
            .filter(statement_import_id=import_id, outcome=Outcome.PENDING, id__gt=after_id)
            .order_by("id")[:size]
        )
        if not lines:
            return 0, after_id
        batch = _Batch.load(lines, careful)
        for line in lines:
            _decide(line, batch)
        _apply_all(batch)
        _lines_save(lines)
        StatementImport.objects.filter(pk=import_id).update(
            lines_processed=F("lines_processed") + len(lines), progress_at=timezone.now()
        )
    return len(lines), lines[-1].pk


def _match_batch_safely(import_id: int, size: int, after_id: int) -> tuple[int, int]:
    try:
        return _match_batch(import_id, size, after_id)
    except (DatabaseError, ledger.LedgerError):
        # The whole batch rolled back: do it again with a savepoint per applied line, so the one
        # line at fault goes to review instead of failing its batch forever.
        logger.warning("statement import %s: a batch failed, retrying it line by line", import_id, exc_info=True)
        return _match_batch(import_id, size, after_id, careful=True)


def _statistics_refresh(*, import_id: int, size: int) -> None:
    """A big import's lines are not in PostgreSQL's statistics yet (autovacuum analyses the table
    a minute later at best): planned on stale figures, each claim sorted every pending line of the
    import on disk (150 ms a batch at 100,000 lines). ANALYZE reads a fixed sample (~0.2 s); a
    database user that does not own the table gets a warning, not an error."""
    if connection.vendor != "postgresql":
        return
    new = StatementImport.objects.filter(pk=import_id).values_list("lines_new", flat=True).first() or 0
    if new >= 10 * size:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {StatementLine._meta.db_table}")


def statement_import_match(*, import_id: int, batch_size: int | None = None) -> int:
    """Match every pending line of an import; returns the lines this call decided."""
    size = batch_size or settings.STATEMENT_MATCH_BATCH
    started = StatementImport.objects.filter(pk=import_id, status=StatementImport.Status.STORED).update(
        status=StatementImport.Status.MATCHING, matching_started_at=timezone.now(), progress_at=timezone.now()
    )
    if started:
        _statistics_refresh(import_id=import_id, size=size)
    decided, after_id = 0, 0
    while True:
        done, last_id = _match_batch_safely(import_id, size, after_id)
        if not done:
            if after_id == 0:
                break
            # One more pass from the start: lines another worker held (SKIP LOCKED) and released
            # without deciding them (its batch rolled back, or it died) are still pending.
            after_id = 0
            continue
        decided += done
        after_id = last_id
    if not StatementLine.objects.filter(statement_import_id=import_id, outcome=Outcome.PENDING).exists():
        StatementImport.objects.filter(
            pk=import_id, status__in=(StatementImport.Status.STORED, StatementImport.Status.MATCHING)
        ).update(status=StatementImport.Status.DONE, finished_at=timezone.now())
    return decided


def pending_statement_lines_sweep(*, older_than_seconds: int) -> list[int]:
    """Imports with lines still pending and no batch finished for this long (the broker lost the
    task, or its worker was killed): enqueue their matching again. An import a worker is still
    going through moves every batch and is left alone."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        StatementImport.objects.filter(
            status__in=(StatementImport.Status.STORED, StatementImport.Status.MATCHING),
            stored_at__lt=cutoff,
        )
        .filter(Q(progress_at__isnull=True) | Q(progress_at__lt=cutoff))
        .filter(Exists(StatementLine.objects.filter(statement_import=OuterRef("pk"), outcome=Outcome.PENDING)))
        .order_by("pk").values_list("pk", flat=True)[:100]
    )
    for import_id in ids:
        queue.send("match_statement", import_id)
    if ids:
        logger.info("sweeper re-enqueued the matching of %d statement imports", len(ids))
    return ids
