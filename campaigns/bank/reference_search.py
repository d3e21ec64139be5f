"""Pledge references in free text, as banks mangle them (case, spaces, line breaks, hyphens).

Stand-in of the `statements` branch: the `bank-parsers` branch's module replaces it with the
same `find_reference_candidates(text)` signature. Linear in the text: one pass builds the
text without separators, then each "JG" is tried once with its seven following symbols.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from campaigns.services.references import ALPHABET, BODY_LENGTH, PREFIX, is_valid_code

_SEPARATORS = frozenset(" \t\r\n\f\v-_./")
# What readers and clerks type for symbols the alphabet leaves out.
_CONFUSED = {"0": "DQ", "O": "DQ", "1": "J7T", "I": "J7T", "L": "J7T"}


@dataclass(frozen=True)
class ReferenceCandidate:
    reference: str  # JG-XXXXXXX, with a valid check character
    corrected: bool  # True when a confused symbol (O/0, I/1/L) had to be read differently
    position: int  # index in the compacted text, for messages


def _variants(code: str) -> list[tuple[str, bool]]:
    if all(char in ALPHABET for char in code):
        return [(code, False)] if is_valid_code(code) else []
    options = [_CONFUSED.get(char, char if char in ALPHABET else "") for char in code]
    if not all(options) or sum(char in _CONFUSED for char in code) > 2:
        return []
    return [("".join(p), True) for p in itertools.product(*options) if is_valid_code("".join(p))]


def find_reference_candidates(text: str) -> list[ReferenceCandidate]:
    compact = "".join(char for char in (text or "").upper() if char not in _SEPARATORS)
    found: list[ReferenceCandidate] = []
    seen: set[str] = set()
    start = compact.find("JG")
    while start != -1:
        code = compact[start + 2 : start + 3 + BODY_LENGTH]
        if len(code) == BODY_LENGTH + 1:
            for variant, corrected in _variants(code):
                if variant not in seen:
                    seen.add(variant)
                    found.append(ReferenceCandidate(PREFIX + variant, corrected, start))
        start = compact.find("JG", start + 1)
    return found
