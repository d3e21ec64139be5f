"""Whatever bytes arrive, a parser either reads records or raises StatementError — never anything else.

An importer that catches StatementError must be able to tell the editor what is wrong; a KeyError
from the depths of a parser would be a 500 and an unexplained failed upload.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.bank import FORMATS, parse_statement
from campaigns.bank.records import StatementError
from tests.test_bank_bad_input import OPTIONS, SMALL


def _mutations():
    """A small file of some format, cut short, with bytes replaced or inserted."""
    return st.tuples(
        st.sampled_from(sorted(SMALL)),
        st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=4)), max_size=4),
        st.one_of(st.none(), st.integers(min_value=0)),
    )


def _mutate(data: bytes, edits, cut) -> bytes:
    for position, replacement in edits:
        index = position % (len(data) + 1)
        data = data[:index] + replacement + data[index + len(replacement) // 2:]
    if cut is not None:
        data = data[:cut % (len(data) + 1)]
    return data


def _read_or_refuse(data: bytes, name: str) -> None:
    try:
        records = list(parse_statement(data, format=name, **OPTIONS.get(name, {})))
    except StatementError as error:
        assert str(error)
        return
    for record in records:
        assert isinstance(record.amount, Decimal) and record.amount.as_tuple().exponent == -2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=_mutations(), claimed=st.sampled_from(sorted(FORMATS)))
def test_a_damaged_file_is_read_or_refused_with_a_statement_error(mutation, claimed):
    name, edits, cut = mutation
    _read_or_refuse(_mutate(SMALL[name], edits, cut), claimed)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), claimed=st.sampled_from(sorted(FORMATS)))
def test_random_bytes_are_refused_with_a_statement_error(data, claimed):
    _read_or_refuse(data, claimed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=_mutations())
def test_each_parser_reads_or_refuses_a_damaged_file_of_its_own_format(mutation):
    name, edits, cut = mutation
    data = _mutate(SMALL[name], edits, cut)
    try:
        records = list(FORMATS[name](data, **OPTIONS.get(name, {})))
    except StatementError as error:
        assert str(error)
        return
    assert all(isinstance(record.amount, Decimal) for record in records)
