"""Import a bank statement and match it: the admin upload's code path, from a shell."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from campaigns.bank import FORMATS, PROFILES
from campaigns.bank.records import StatementError
from campaigns.models import CsvProfile
from campaigns.services import statement_matching, statements


def summary_lines(summary: dict) -> list[str]:
    imported = summary["import"]
    lines = [
        f"{imported.file_name}: {summary['lines_read']} line(s) read, {summary['lines_new']} new, "
        f"{summary['lines_already_imported']} already imported",
        f"credits {summary['credits']}, debits {summary['debits']}",
    ]
    for outcome, entry in summary["outcomes"].items():
        sums = ", ".join(f"{amount} {currency}" for currency, amount in sorted(entry["sums"].items()))
        lines.append(f"  {outcome:<10} {entry['count']:>7}" + (f"  ({sums}, minor units)" if sums else ""))
    return lines


class Command(BaseCommand):
    help = "Import a bank statement (camt.053, CFONB 120, MT940 or CSV with a saved profile) and match its lines."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--profile", metavar="NAME",
                            help="CSV profile, saved or built-in (required for --format csv; built-in: "
                                 f"{', '.join(sorted(PROFILES))}; a saved one of the same name wins)")
        parser.add_argument("--no-match", action="store_true", help="store only; the workers match")

    def handle(self, *args, file: str, format: str, profile: str | None = None, no_match: bool = False,  # noqa: A002
               **options) -> None:
        profile_id = builtin_profile = None
        if profile:
            profile_id = CsvProfile.objects.filter(name=profile).values_list("pk", flat=True).first()
            if profile_id is None and profile in PROFILES:
                builtin_profile = profile
            elif profile_id is None:
                saved = sorted(CsvProfile.objects.values_list("name", flat=True))
                raise CommandError(f"unknown CSV profile {profile!r} (saved: {', '.join(saved) or 'none'}; "
                                   f"built-in: {', '.join(sorted(PROFILES))})")
        try:
            # Refused before reading: the limit applies to the file's size on disk.
            statements.statement_size_check(size=os.path.getsize(file))
            with open(file, "rb") as handle:
                data = handle.read()
            result = statements.statement_import(data=data, file_name=os.path.basename(file), format=format,
                                                 profile_id=profile_id, builtin_profile=builtin_profile)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        except StatementError as exc:
            raise CommandError(f"{file}: refused, nothing stored: {exc}") from None
        if not no_match:
            # The worker enqueued on commit may take lines too: both only take what is pending.
            statement_matching.statement_import_match(import_id=result.statement_import.pk)
        for line in summary_lines(statements.statement_import_summary(import_id=result.statement_import.pk)):
            self.stdout.write(line)
