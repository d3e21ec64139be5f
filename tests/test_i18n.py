"""English catalogues: every string extracted afresh has a reviewed translation (scripts/i18n_check.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import i18n_check  # noqa: E402

if shutil.which("xgettext") is None or shutil.which("msgfmt") is None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        raise RuntimeError("gettext is required under REQUIRE_SERVICES=1 (apt-get install gettext)")
    pytest.skip("gettext is not installed (apt-get install gettext)", allow_module_level=True)


def test_every_string_has_a_reviewed_english_translation():
    assert i18n_check.problems() == []


def test_the_check_names_a_missing_a_fuzzy_and_a_stale_entry(tmp_path):
    locale = tmp_path / "locale"
    shutil.copytree(ROOT / "locale", locale)
    po = locale / "admin" / "en" / "LC_MESSAGES" / "django.po"
    text = po.read_text()
    text = text.replace('msgid "Campagnes"\nmsgstr "Campaigns"\n', "")
    text = text.replace('msgid "grand livre"\n', '#, fuzzy\nmsgid "grand livre"\n')
    po.write_text(text)
    found = i18n_check.problems(locale_dir=locale)
    assert any(line.startswith("no English translation: 'Campagnes' (campaigns/apps.py:") for line in found)
    assert "locale/admin/en/LC_MESSAGES/django.po: fuzzy: 'grand livre'" in found
    ledger_label = "no English translation: 'grand livre' (campaigns/models/donations.py:"
    assert any(line.startswith(ledger_label) for line in found)
    # The .mo still holds both: it was compiled from another .po than this one.
    assert "locale/admin/en/LC_MESSAGES/django.mo: out of date with its .po (make i18n)" in found


def test_the_command_exits_1_on_a_problem_and_0_when_complete():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "i18n_check.py")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all strings translated" in result.stdout
