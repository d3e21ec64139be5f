"""Where the shared real fixtures live (bank statements, Stripe objects): never in the repository.

`JAUGE_FIXTURES_DIR` if set, else `<repo>/../shared/fixtures` (CI clones the repository beside a
copy of shared/), else `/work/shared/fixtures`. Absent: the test is skipped with the reason, and
under REQUIRE_SERVICES=1 it fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path | None:
    candidates = [os.environ.get("JAUGE_FIXTURES_DIR", ""), str(ROOT.parent / "shared" / "fixtures"),
                  "/work/shared/fixtures"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def fixture_path(*parts: str) -> Path:
    """The path of one shared fixture, or skip (fail under REQUIRE_SERVICES=1) when it is absent."""
    base = fixtures_dir()
    path = base.joinpath(*parts) if base else None
    if path is None or not path.exists():
        message = f"shared fixture {'/'.join(parts)} not found (set JAUGE_FIXTURES_DIR or clone shared/ beside)"
        if os.environ.get("REQUIRE_SERVICES", "") in ("1", "true", "True", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path
