"""Where the shared real fixtures live (bank statements, provider objects): never copied into the repo.

CI clones the repository beside a copy of `shared/`, so the default is `<repo>/../shared/fixtures`;
a worktree elsewhere falls back to `/work/shared/fixtures`; `JAUGE_FIXTURES_DIR` overrides both.
Absent fixtures skip the tests that need them, with a message, except under REQUIRE_SERVICES=1
where they fail: CI must never pass by skipping the real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import REQUIRE

REPO_ROOT = Path(__file__).resolve().parents[1]
FALLBACK = Path("/work/shared/fixtures")


def fixtures_dir() -> Path | None:
    """The fixtures folder, or None when there is none."""
    override = os.environ.get("JAUGE_FIXTURES_DIR")
    candidates = [Path(override)] if override else [REPO_ROOT.parent / "shared" / "fixtures", FALLBACK]
    return next((path for path in candidates if path.is_dir()), None)


def fixture_path(*parts: str) -> Path:
    """A file or folder under the fixtures; skips (or fails under REQUIRE_SERVICES=1) when absent."""
    base = fixtures_dir()
    path = base.joinpath(*parts) if base is not None else None
    if path is None or not path.exists():
        where = os.environ.get("JAUGE_FIXTURES_DIR") or f"{REPO_ROOT.parent / 'shared' / 'fixtures'} or {FALLBACK}"
        message = f"shared fixture {'/'.join(parts)} not found (looked in {where}; set JAUGE_FIXTURES_DIR)"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    return path


def statement_bytes(folder: str, name: str) -> bytes:
    return fixture_path("statements", folder, name).read_bytes()
