"""Matching statement lines to pledges: references as banks mangle them, suggestions, review, undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from campaigns.models import AuditLog, CampaignTotal, Donation, LedgerEntry, StatementImport, StatementLine
from campaigns.references import check_character
from campaigns.services import pledges, statement_review, statements
from campaigns.services.reconcile import campaign_reconcile
from campaigns.services.statement_matching import pending_statement_lines_sweep, statement_import_match
from tests import factories
from tests.staff_world import staff_world
from tests.statement_files import Entry, camt053

Outcome = StatementLine.Outcome


def _run(entries: list[Entry], name: str = "releve.xml") -> StatementImport:
    result = statements.statement_import(data=camt053(entries), file_name=name, format="camt053")
    statement_import_match(import_id=result.statement_import.pk)
    result.statement_import.refresh_from_db()
    return result.statement_import


def _pledge(campaign, amount_minor: int = 4000, name: str = "Marie Curie", email: str = "") -> Donation:
    return pledges.pledge_create(campaign=campaign, provider="bank_transfer", amount_minor=amount_minor,
                                 donor_name=name, donor_email=email)


def _mangled(reference: str) -> str:
    """As banks print it: lower case, spaces, a line break in the middle."""
    code = reference.lower().replace("-", " ")
    return f"virement de m curie {code[:5]}\n{code[5:]} merci"


def _balanced(campaign) -> None:
    total = CampaignTotal.objects.get(campaign=campaign)
    ledger_sum = LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("delta_minor"))["s"] or 0
    assert total.total_minor == ledger_sum
    assert campaign_reconcile(campaign=campaign, fix=False) == []


def test_a_mangled_reference_confirms_its_pledge_and_the_total(campaign):
    pledge = _pledge(campaign)
    imported = _run([Entry("40.00", _mangled(pledge.reference), payer="M CURIE")])
    line = StatementLine.objects.get()
    pledge.refresh_from_db()
    assert (line.outcome, line.matched_by, line.donation_id) == (Outcome.MATCHED, "reference", pledge.pk)
    assert pledge.status == Donation.Status.CONFIRMED
    assert list(pledge.statement_lines.all()) == [line]  # linked both ways
    total = CampaignTotal.objects.get(campaign=campaign)
    assert (total.total_minor, total.pending_minor) == (4000, 0)
    assert (imported.status, imported.lines_processed) == (StatementImport.Status.DONE, 1)
    _balanced(campaign)


def test_matching_twice_applies_once(campaign):
    pledge = _pledge(campaign)
    imported = _run([Entry("40.00", pledge.reference)])
    assert statement_import_match(import_id=imported.pk) == 0
    assert LedgerEntry.objects.filter(donation=pledge).count() == 1


def test_a_second_line_for_a_paid_pledge_is_a_duplicate_with_no_ledger_entry(campaign):
    pledge = _pledge(campaign)
    _run([Entry("40.00", pledge.reference, date="2026-11-28")], "a.xml")
    _run([Entry("40.00", f"again {pledge.reference}", date="2026-11-29")], "b.xml")
    assert list(StatementLine.objects.order_by("id").values_list("outcome", flat=True)) == [
        Outcome.MATCHED, Outcome.DUPLICATE]
    assert LedgerEntry.objects.filter(donation=pledge).count() == 1
    _balanced(campaign)


def test_two_lines_for_one_pledge_in_one_batch_count_once(campaign):
    pledge = _pledge(campaign)
    _run([Entry("40.00", pledge.reference), Entry("40.00", pledge.reference.lower())])
    assert sorted(StatementLine.objects.values_list("outcome", flat=True)) == [Outcome.DUPLICATE, Outcome.MATCHED]
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 4000


def test_an_expired_pledge_is_still_confirmed(campaign):
    pledge = _pledge(campaign)
    factories.fail(pledge.pk, status=Donation.Status.EXPIRED)
    _run([Entry("40.00", pledge.reference)])
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 4000


@pytest.mark.parametrize(("amount", "currency", "reason"), [
    ("30.00", "EUR", "partial payment"),
    ("50.00", "EUR", "over-payment"),
    ("40.00", "CHF", "currency CHF"),
])
def test_a_wrong_amount_or_currency_goes_to_review(campaign, amount, currency, reason):
    pledge = _pledge(campaign)
    _run([Entry(amount, pledge.reference, currency=currency)])
    line = StatementLine.objects.get()
    assert line.outcome == Outcome.REVIEW and reason in line.reason
    assert line.suggestions[0]["donation_id"] == pledge.pk
    assert not LedgerEntry.objects.exists()


def test_a_corrected_reference_is_accepted_only_when_it_is_the_one_valid_reading(campaign):
    pledge = _pledge(campaign)
    body = "D23456"
    Donation.objects.filter(pk=pledge.pk).update(reference=f"JG-{body}{check_character(body)}")
    # A clerk typed 0 for D: read back as D (Q is the other reading, and fails the check).
    _run([Entry("40.00", f"don jg-0{body[1:]}{check_character(body)}")])
    line = StatementLine.objects.get()
    assert (line.outcome, line.donation_id) == (Outcome.MATCHED, pledge.pk)
    assert "corrected" in line.reason


def test_a_reading_that_fits_two_pledges_goes_to_review(campaign):
    first, second = _pledge(campaign), _pledge(campaign)
    Donation.objects.filter(pk=first.pk).update(reference="JG-" + _code("D23456"))
    Donation.objects.filter(pk=second.pk).update(reference="JG-" + _code("D23457"))
    _run([Entry("40.00", f"{_code('D23456')} et JG-{_code('D23457')} et JG {_code('D23456')}")])
    line = StatementLine.objects.get()
    assert line.outcome == Outcome.REVIEW and "several references" in line.reason
    assert not LedgerEntry.objects.exists()


def _code(body: str) -> str:
    return body + check_character(body)


def test_a_debit_is_listed_never_applied(campaign):
    _run([Entry("12.00", "FRAIS BANCAIRES", credit=False)])
    assert StatementLine.objects.get().outcome == Outcome.DEBIT
    assert not LedgerEntry.objects.exists()


def test_a_returned_transfer_of_a_matched_gift_goes_to_review_with_a_one_click_refund(campaign, db):
    users = staff_world()
    pledge = _pledge(campaign)
    _run([Entry("40.00", pledge.reference, payer="Marie Curie", payer_iban="DE89370400440532013000",
                date="2026-11-20")], "a.xml")
    _run([Entry("40.00", "RETOUR VIREMENT MOTIF AC04", credit=False, payer="Marie Curie",
                payer_iban="DE89370400440532013000", date="2026-11-22")], "b.xml")
    returned = StatementLine.objects.get(direction=StatementLine.Direction.DEBIT)
    assert returned.outcome == Outcome.REVIEW and returned.suggestions[0]["kind"] == "refund"
    statement_review.statement_line_refund(actor=users["finance"], line_id=returned.pk)
    pledge.refresh_from_db()
    assert (pledge.status, pledge.balance_minor) == (Donation.Status.REFUNDED, 0)
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 0
    assert AuditLog.objects.filter(action=AuditLog.Action.REFUND, donation=pledge).exists()
    _balanced(campaign)


def test_a_strong_suggestion_without_a_rival_is_applied(campaign):
    pledge = _pledge(campaign, 2750, "Émile Zola")
    _pledge(campaign, 2750, "Victor Hugo")
    today = timezone.localdate().isoformat()
    _run([Entry("27.50", "VIR SEPA DON", payer="ZOLA EMILE", date=today)])
    line = StatementLine.objects.get()
    assert (line.outcome, line.matched_by, line.donation_id) == (Outcome.MATCHED, "suggestion", pledge.pk)


def test_a_suggestion_with_a_rival_goes_to_review_with_both(campaign):
    first = _pledge(campaign, 2750, "Jean Martin")
    second = _pledge(campaign, 2750, "Jeanne Martin")
    _run([Entry("27.50", "VIR SEPA DON", payer="J MARTIN", date=timezone.localdate().isoformat())])
    line = StatementLine.objects.get()
    assert line.outcome == Outcome.REVIEW
    assert {s["donation_id"] for s in line.suggestions} == {first.pk, second.pk}
    assert not LedgerEntry.objects.exists()


def test_review_decisions_move_money_through_the_ledger_and_are_audited(campaign):
    users = staff_world()
    actor = users["finance"]
    pledge = _pledge(campaign, 4000)
    _run([Entry("45.00", pledge.reference), Entry("15.00", "DON"), Entry("9.99", "VIREMENT INTERNE")])
    over, unknown, internal = StatementLine.objects.order_by("id")
    statement_review.statement_line_assign(actor=actor, line_id=over.pk, donation_id=pledge.pk, reason="ok")
    gift = statement_review.statement_line_create_gift(actor=actor, line_id=unknown.pk, campaign_id=campaign.pk,
                                                       anonymous=True, reason="don anonyme")
    statement_review.statement_line_dismiss(actor=actor, line_id=internal.pk, reason="virement interne")
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 4500 + 1500
    assert gift.anonymous and gift.status == Donation.Status.CONFIRMED
    with pytest.raises(statement_review.ReviewError):  # decided once
        statement_review.statement_line_dismiss(actor=actor, line_id=internal.pk, reason="again")
    statement_review.statement_line_undo(actor=actor, line_id=unknown.pk, reason="erreur")
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 4500
    assert StatementLine.objects.get(pk=unknown.pk).outcome == Outcome.REVIEW
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions[-4:] == ["stmt_assign", "stmt_assign", "stmt_dismiss", "stmt_undo"]
    assert LedgerEntry.objects.filter(delta_minor__lt=0).count() == 1  # reversed, nothing deleted
    _balanced(campaign)


def test_undoing_an_import_reverses_its_gifts_and_a_reimport_adds_nothing(campaign):
    users = staff_world()
    first, second = _pledge(campaign, 1000), _pledge(campaign, 2000)
    entries = [Entry("10.00", first.reference), Entry("20.00", second.reference), Entry("3.00", "x", credit=False)]
    imported = _run(entries)
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 3000
    reversed_minor = statement_review.statement_import_undo(actor=users["finance"], import_id=imported.pk,
                                                             reason="mauvais fichier")
    assert reversed_minor == 3000
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 0
    assert LedgerEntry.objects.count() == 4
    assert set(StatementLine.objects.values_list("outcome", flat=True)) == {Outcome.DISMISSED}
    assert StatementImport.objects.get(pk=imported.pk).status == StatementImport.Status.UNDONE
    assert _run(entries).lines_new == 0
    _balanced(campaign)


def test_the_sweeper_finds_imports_whose_lines_are_still_pending(campaign):
    result = statements.statement_import(data=camt053([Entry("10.00", "A")]), file_name="a.xml", format="camt053")
    assert pending_statement_lines_sweep(older_than_seconds=60) == []
    StatementImport.objects.update(stored_at=timezone.now() - timedelta(minutes=5))
    assert pending_statement_lines_sweep(older_than_seconds=60) == [result.statement_import.pk]
    # A worker that finished a batch a moment ago is still on it: left alone.
    StatementImport.objects.update(status=StatementImport.Status.MATCHING, progress_at=timezone.now())
    assert pending_statement_lines_sweep(older_than_seconds=60) == []
    statement_import_match(import_id=result.statement_import.pk)
    StatementImport.objects.update(progress_at=timezone.now() - timedelta(minutes=5))
    assert pending_statement_lines_sweep(older_than_seconds=60) == []  # nothing pending any more


def test_finance_uploads_follows_the_progress_and_works_the_review_queue(campaign):
    users = staff_world()
    client = Client()
    client.force_login(users["finance"])
    pledge = _pledge(campaign, 4000)
    upload = camt053([Entry("40.00", _mangled(pledge.reference)), Entry("15.00", "DON SANS REF")])
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post("/admin/campaigns/statementimport/upload/", {
        "file": SimpleUploadedFile("releve.xml", upload), "format": "camt053"})
    assert response.status_code == 302
    imported = StatementImport.objects.get()
    progress = client.get(f"/admin/campaigns/statementimport/{imported.pk}/progress/")
    assert 'hx-trigger="every 1s"' in progress.content.decode()  # stored, not matched yet: keeps polling
    statement_import_match(import_id=imported.pk)
    progress = client.get(f"/admin/campaigns/statementimport/{imported.pk}/progress/").content.decode()
    assert "hx-trigger" not in progress and "2 ligne(s) rapprochée(s) sur 2" in progress
    review = client.get("/admin/campaigns/statementimport/review/").content.decode()
    assert "DON SANS REF" in review
    line = StatementLine.objects.get(outcome=Outcome.REVIEW)
    # A reference that is no pledge's: refused with the reason, nothing moves.
    response = client.post(f"/admin/campaigns/statementimport/line/{line.pk}/decide/",
                           {"action": "assign", "reference": "jg-zzzzzzz"}, follow=True)
    assert "not a Jauge reference" in response.content.decode()
    assert StatementLine.objects.get(pk=line.pk).outcome == Outcome.REVIEW
    response = client.post(f"/admin/campaigns/statementimport/line/{line.pk}/decide/",
                           {"action": "dismiss", "reason": "test"})
    assert response.status_code == 302
    assert StatementLine.objects.get(pk=line.pk).outcome == Outcome.DISMISSED
    # An editor without the Finance role sees none of it.
    editor = Client()
    editor.force_login(users["editor"])
    assert editor.get("/admin/campaigns/statementimport/review/").status_code == 403


def test_an_upload_over_the_limit_is_refused_from_its_length_before_reading(campaign, settings):
    users = staff_world()
    client = Client()
    client.force_login(users["finance"])
    settings.STATEMENT_MAX_BYTES = 10
    # The header says 200 MB; the view answers from it without reading the body.
    response = client.generic("POST", "/admin/campaigns/statementimport/upload/", b"",
                              CONTENT_TYPE="multipart/form-data; boundary=x", CONTENT_LENGTH=str(200 * 1024 * 1024))
    assert response.status_code == 413
    assert "STATEMENT_MAX_BYTES" in response.content.decode()
    assert not StatementImport.objects.exists()


@pytest.mark.postgres
def test_a_line_whose_ledger_write_fails_goes_to_review_alone(campaign):
    from django.db import connection

    good, bad = _pledge(campaign, 1000), _pledge(campaign, 2000)
    # A real database refusal for one pledge only (a trigger), as a constraint or a lock timeout would.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION jauge_test_refuse() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.id = {bad.pk} AND NEW.status = 'confirmed' THEN RAISE EXCEPTION 'refused for the test'; "
            "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute("CREATE TRIGGER jauge_test_refuse BEFORE UPDATE ON campaigns_donation "
                       "FOR EACH ROW EXECUTE FUNCTION jauge_test_refuse()")
    _run([Entry("10.00", good.reference), Entry("20.00", bad.reference)])
    lines = {line.donation_id or bad.pk: line for line in StatementLine.objects.all()}
    assert lines[good.pk].outcome == Outcome.MATCHED
    assert lines[bad.pk].outcome == Outcome.REVIEW and "refused for the test" in lines[bad.pk].reason
    total = CampaignTotal.objects.get(campaign=campaign)
    # The refused pledge stays pending (its donor never confirmed it, so it is not public either).
    assert (total.total_minor, total.pending_minor) == (1000, 0)
    assert Donation.objects.get(pk=bad.pk).status == Donation.Status.PENDING
    _balanced(campaign)


def test_an_account_that_paid_a_donor_before_points_to_that_donors_new_pledge(campaign):
    first = _pledge(campaign, 1500, "Marie Curie", "marie@example.org")
    today = timezone.localdate().isoformat()
    _run([Entry("15.00", first.reference, payer="M CURIE", payer_iban="de89 3704 0044 0532 0130 00", date=today)],
         "a.xml")
    second = _pledge(campaign, 2500, "Marie Curie", "marie@example.org")
    _pledge(campaign, 2500, "Paul Langevin", "paul@example.org")
    # No reference, a payer name the bank cut short: the account (IBAN, normalised) knows her.
    _run([Entry("25.00", "VIR PERMANENT", payer="MME M.", payer_iban="DE89370400440532013000", date=today)],
         "b.xml")
    line = StatementLine.objects.get(amount_minor=2500)
    assert line.payer_iban == "DE89370400440532013000"
    assert (line.outcome, line.matched_by, line.donation_id) == (Outcome.MATCHED, "suggestion", second.pk)
