"""Pledge references: short, unambiguous, and a check character that catches reader typos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.bank.reference_search import reference_find
from campaigns.references import (
    ALPHABET,
    BODY_LENGTH,
    InvalidReference,
    check_character,
    is_valid_code,
    reference_generate,
    reference_normalize,
)

bodies = st.text(alphabet=ALPHABET, min_size=BODY_LENGTH, max_size=BODY_LENGTH)


def code_of(body: str) -> str:
    return body + check_character(body)


def test_alphabet_has_no_lookalikes_and_a_prime_size():
    assert not set("01OIL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


def test_generated_references_look_like_the_example_and_validate():
    for _ in range(200):
        reference = reference_generate()
        assert reference.startswith("JG-") and len(reference) == 3 + BODY_LENGTH + 1
        assert is_valid_code(reference[3:])


@given(bodies, st.integers(min_value=0, max_value=BODY_LENGTH), st.sampled_from(ALPHABET))
def test_every_single_character_typo_is_caught(body, position, replacement):
    code = code_of(body)
    if code[position] == replacement:
        return
    typo = code[:position] + replacement + code[position + 1 :]
    assert not is_valid_code(typo)


@given(bodies, st.integers(min_value=0, max_value=BODY_LENGTH - 1))
def test_every_adjacent_swap_is_caught(body, position):
    code = code_of(body)
    if code[position] == code[position + 1]:
        return
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert not is_valid_code(swapped)


def test_every_single_typo_and_swap_of_one_code_exhaustively():
    code = code_of("7K3F9X")
    for position in range(len(code)):
        for char in ALPHABET:
            if char != code[position]:
                assert not is_valid_code(code[:position] + char + code[position + 1 :])
    for position in range(len(code) - 1):
        if code[position] != code[position + 1]:
            assert not is_valid_code(code[:position] + code[position + 1] + code[position] + code[position + 2 :])


@given(bodies)
def test_what_readers_type_is_normalized(body):
    reference = "JG-" + code_of(body)
    assert reference_normalize(reference.lower()) == reference
    assert reference_normalize(reference.replace("-", " ")) == reference
    assert reference_normalize(code_of(body)) == reference
    assert reference_find(f"VIR SEPA /{reference.replace('-', '')}/ DON MERCI") == reference


@pytest.mark.parametrize("text", ["", "JG-", "JG-AAAAAAA", "JG-0K3F9XA", "hello"])
def test_invalid_references_are_refused_clearly(text):
    with pytest.raises(InvalidReference, match="not a Jauge reference"):
        reference_normalize(text)
