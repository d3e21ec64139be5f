"""The pledge-reference search over statement texts: tolerant of what banks do, strict on validity, linear."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.bank.reference_search import CONFUSABLES, find_reference_candidates, reference_find
from campaigns.references import ALPHABET, BODY_LENGTH, check_character, is_valid_code
from tests.guards import deadline


def ref(body: str) -> str:
    return f"JG-{body}{check_character(body)}"


REFERENCE = ref("7K3F9X")
CODE = REFERENCE[3:]


@pytest.mark.parametrize("text", [
    f"VIR SEPA {REFERENCE} MERCI",
    f"vir sepa {REFERENCE.lower()} merci",
    f"DON {CODE[:3]} {CODE[3:]}".replace("DON ", "DON JG "),
    f"DON JG-{CODE[:4]}\n{CODE[4:]} POUR LE JOURNAL",  # a line break in the middle
    f"DON J G - {' - '.join(CODE)}",
    f"/JG{CODE}/FACTURE",
    f"JG\u2013{CODE}",  # an en dash typed by a word processor
    f"REF JG-{CODE[:2]}\r\n  {CODE[2:5]}\t{CODE[5:]}",
])
def test_a_mangled_reference_is_found_as_is(text):
    (candidate,) = find_reference_candidates(text)
    assert candidate == REFERENCE and candidate.corrected is False
    assert reference_find(text) == REFERENCE


def _with_lookalike(symbol: str, lookalike: str) -> tuple[str, str]:
    """A valid reference with `symbol` in its body, and the same written with `lookalike` instead."""
    assert lookalike.upper() in CONFUSABLES and symbol in CONFUSABLES[lookalike.upper()]
    reference = ref("2" + symbol + "K3F9")
    return reference, reference[:4] + lookalike + reference[5:]


@pytest.mark.parametrize(("symbol", "lookalike"), [("D", "0"), ("D", "O"), ("Q", "0"), ("J", "1"), ("J", "I"),
                                                    ("T", "L"), ("7", "l")])
def test_a_lookalike_is_corrected_and_flagged(symbol, lookalike):
    reference, written = _with_lookalike(symbol, lookalike)
    candidates = find_reference_candidates(f"DON {written} MERCI")
    assert reference in candidates
    assert all(c.corrected for c in candidates)  # the matcher accepts it only when it is the only one
    assert reference_find(f"DON {written} MERCI") is None  # the old exact search does not guess


def test_a_broken_check_character_is_never_returned():
    wrong = REFERENCE[:-1] + next(c for c in ALPHABET if c != REFERENCE[-1])
    assert find_reference_candidates(f"DON {wrong}") == []
    assert find_reference_candidates("JG-ABCDEF") == []  # too short
    assert find_reference_candidates("") == [] and find_reference_candidates(None) == []


def test_several_references_come_in_order_each_once_with_their_span():
    other = ref("ABCDEF")
    text = f"{other} puis {REFERENCE.lower()} et encore {other}"
    candidates = find_reference_candidates(text)
    assert candidates == [other, REFERENCE]
    assert [text[c.start:c.end].upper().replace(" ", "") for c in candidates] == [other, REFERENCE]


@settings(max_examples=200, deadline=None)
@given(body=st.text(alphabet=ALPHABET, min_size=BODY_LENGTH, max_size=BODY_LENGTH),
       noise=st.lists(st.sampled_from([" ", "\n", "-", "\r\n", "  "]), min_size=0, max_size=6),
       prefix=st.text(alphabet="abcXYZ ;/", max_size=20))
def test_any_reference_survives_blanks_and_hyphens_anywhere(body, noise, prefix):
    reference = ref(body)
    chars = list(reference.replace("-", ""))
    for index, blank in enumerate(noise):
        chars.insert(1 + (index * 3) % (len(chars) - 1), blank)
    text = prefix + " " + "".join(chars).lower()
    assert reference in find_reference_candidates(text)
    assert is_valid_code(reference[3:])


@pytest.mark.parametrize("text", [
    " " * 1_000_000,  # a megabyte of blanks
    "J" + " " * 200_000 + "G" + " " * 200_000,  # what made the old pattern backtrack
    "JG " + " \n" * 200_000 + "X",
    "J G " * 100_000,
    "JG" + "0" * 300_000,  # lookalikes everywhere: corrections stay bounded per position
])
def test_the_search_is_linear_on_long_runs_of_blanks(text):
    with deadline(20):
        find_reference_candidates(text)
        reference_find(text)


def test_a_reference_after_a_huge_run_of_blanks_is_still_found():
    with deadline(20):
        assert find_reference_candidates("DON" + " " * 500_000 + REFERENCE) == [REFERENCE]
