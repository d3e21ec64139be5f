"""Human pledge references such as `JG-7K3F9XA`: what a reader writes in a bank transfer's label.

The alphabet has 31 symbols (no 0/O, 1/I/L, which readers and bank clerks confuse). 31 is
prime, so a weighted check character over Z/31 catches every single-character substitution
(weights are non-zero mod 31) and every adjacent swap (neighbouring weights differ mod 31):
a typo never silently points at another reader's pledge.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PREFIX = "JG-"
BODY_LENGTH = 6
_MODULUS = len(ALPHABET)  # 31, a prime: the check arithmetic relies on it
_VALUE = {char: index for index, char in enumerate(ALPHABET)}


class InvalidReference(ValueError):
    """Text that is not a valid reference (wrong symbols, length or check character)."""


def _weighted_sum(symbols: str) -> int:
    # Weights n, n-1, …, 1 over the full code (check character last, weight 1).
    n = len(symbols)
    return sum((n - position) * _VALUE[char] for position, char in enumerate(symbols))


def check_character(body: str) -> str:
    """The symbol that makes the weighted sum of body + check ≡ 0 (mod 31)."""
    partial = sum((len(body) + 1 - position) * _VALUE[char] for position, char in enumerate(body))
    return ALPHABET[(-partial) % _MODULUS]


def is_valid_code(code: str) -> bool:
    """`code` is body + check character, without the prefix."""
    if len(code) != BODY_LENGTH + 1 or any(char not in _VALUE for char in code):
        return False
    return _weighted_sum(code) % _MODULUS == 0


def reference_generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return f"{PREFIX}{body}{check_character(body)}"


def reference_normalize(text: str) -> str:
    """Accept what people type ("jg 7k3f9xa", "7K3F-9XA") and return `JG-7K3F9XA`, or raise."""
    cleaned = re.sub(r"[\s\-_.]", "", (text or "").upper())
    if cleaned.startswith("JG") and len(cleaned) == len("JG") + BODY_LENGTH + 1:
        cleaned = cleaned[2:]
    if not is_valid_code(cleaned):
        raise InvalidReference(f"not a Jauge reference: {text!r}")
    return PREFIX + cleaned
