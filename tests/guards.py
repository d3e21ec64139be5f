"""Guards for tests whose failure mode is a hang (a quadratic search, a parser loop)."""

from __future__ import annotations

import signal
from contextlib import contextmanager


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging the suite if the block runs longer than `seconds`: a guard, not a
    measurement (a quadratic algorithm on the test's input would never finish in time)."""

    def _expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
