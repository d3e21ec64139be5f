"""Run work from several threads released at the same instant: what the concurrency tests share."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def all_at_once(work: Callable[[int], None], threads: int) -> list[BaseException]:
    """Call `work(n)` for n in range(threads), each in its own thread (its own database
    connection) behind one barrier; returns what they raised, for the test to assert empty."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # surfaced by the caller's assertion
            errors.append(exc)
        finally:
            connections.close_all()

    running = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return errors


def gifts_from_threads(campaign, *, threads: int, per_thread: int, amount_minor: int) -> list[BaseException]:
    """`threads` editors record `per_thread` manual gifts each, all at once (each gift its own
    ledger transaction, competing for the campaign counter's lock)."""
    from campaigns.services import ledger

    def gifts(thread: int) -> None:
        for gift in range(per_thread):
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"t{thread}-{gift}",
                                   amount_minor=amount_minor)

    return all_at_once(gifts, threads)
