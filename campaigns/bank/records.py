"""What every statement parser returns: one `StatementRecord` per booked movement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


class StatementError(ValueError):
    """A file that cannot be imported. The message names the line (or XML element) at fault."""

    def __init__(self, message: str, *, line: int | None = None, element: str | None = None) -> None:
        where = f"line {line}: " if line is not None else (f"<{element}>: " if element else "")
        super().__init__(f"{where}{message}")
        self.line = line
        self.element = element


@dataclass(frozen=True)
class StatementRecord:
    """One movement on the account, as the bank booked it.

    `amount` is a Decimal to the cent, positive for money in (credit), negative for money out;
    never a float. `texts` holds every free text a donor or the bank wrote (remittance lines
    joined, additional information, end-to-end id when meaningful): the matcher searches them.
    """

    account: str  # IBAN or the bank's account number, as in the file ("" when the format has none)
    booking_date: date
    amount: Decimal
    currency: str  # ISO 4217
    value_date: date | None = None
    bank_reference: str = ""  # the bank's own id for the movement (AcctSvcrRef, :61: bank ref…), "" if none
    payer_name: str = ""
    payer_iban: str = ""
    texts: tuple[str, ...] = ()
    raw: str = ""  # the source text of the movement (XML fragment, lines of the file)
    line: int | None = None  # where it starts in the file (1-based), for error messages
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_credit(self) -> bool:
        return self.amount > 0

    @property
    def text(self) -> str:
        return " ".join(t for t in self.texts if t)
