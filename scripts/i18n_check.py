"""Every translatable string has a reviewed English translation (`make i18n-check`; CI runs it as a test).

    .venv/bin/python scripts/i18n_check.py

The source language is French. Django's `makemessages` extracts every string afresh (from a copy of
the code, so the repository's catalogues are left as they are); then each must be translated,
not fuzzy, in one of the English catalogues `locale/<area>/en/LC_MESSAGES/django.po` (admin,
donate, embed: Django merges them), and each compiled `django.mo` must say what its `.po` says.
Exit 1 with the list of what is missing. To fix: add the entries to the area's `.po`, then
`make i18n` (compilemessages).
"""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "en"
SOURCES = ("campaigns", "config", "templates", "manage.py")

MessageKey = tuple[str | None, str]  # (context, msgid)


def _key(message) -> MessageKey:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return message.context, msgid


def extract() -> dict[MessageKey, list[str]]:
    """Every translatable string in the code and templates now, with where it appears."""
    with tempfile.TemporaryDirectory(prefix="jauge-i18n-") as tmp:
        copy = Path(tmp)
        for name in SOURCES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "locale"))
            else:
                shutil.copy2(source, copy / name)
        # An empty locale/ folder: makemessages writes everything into one catalogue there.
        (copy / "locale").mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
        env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="true", JAUGE_VAR_DIR=str(copy / "var"))
        result = subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-l", LANGUAGE, "--no-wrap", "-v0"],
            cwd=copy, env=env, capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"makemessages failed:\n{result.stdout}\n{result.stderr}")
        with (copy / "locale" / LANGUAGE / "LC_MESSAGES" / "django.po").open("rb") as po:
            catalog = read_po(po)
    return {_key(message): [f"{path}:{line}" for path, line in message.locations]
            for message in catalog if message.id}


def catalogues(locale_dir: Path = ROOT / "locale") -> list[Path]:
    return sorted(locale_dir.glob(f"*/{LANGUAGE}/LC_MESSAGES/django.po"))


def _read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po)


def problems(locale_dir: Path = ROOT / "locale") -> list[str]:
    found: list[str] = []
    translated: dict[MessageKey, tuple[str, Path]] = {}
    for path in catalogues(locale_dir):
        relative = path.relative_to(locale_dir.parent)
        catalog = _read(path)
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
            if message.fuzzy:
                found.append(f"{relative}: fuzzy: {_key(message)[1]!r}")
            elif not all(strings):
                found.append(f"{relative}: untranslated: {_key(message)[1]!r}")
            else:
                key = _key(message)
                if key in translated and translated[key][0] != strings[0]:
                    # Django merges the areas' catalogues: one of the two would win silently.
                    found.append(f"{relative}: {key[1]!r} is translated otherwise in "
                                 f"{translated[key][1].relative_to(locale_dir.parent)}")
                translated.setdefault(key, (strings[0], path))
        found += _stale_mo(path, catalog, relative.with_suffix(".mo"))
    for (context, msgid), where in sorted(extract().items(), key=lambda item: _location(item[1][0] if item[1] else "")):
        if (context, msgid) not in translated:
            label = f"{context}|{msgid}" if context else msgid
            found.append(f"no English translation: {label!r} ({', '.join(where[:3])})")
    return found


def _location(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return path, int(line) if line.isdigit() else 0


def _stale_mo(po_path: Path, catalog: Catalog, relative: Path) -> list[str]:
    """The compiled catalogue must hold exactly the .po's translations (Django reads only the .mo)."""
    mo_path = po_path.with_suffix(".mo")
    if not mo_path.exists():
        return [f"{relative}: missing (make i18n)"]
    with mo_path.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog  # the only way to list a .mo's entries
    compiled = {key: value for key, value in compiled.items() if key != ""}  # "" is the header
    expected: dict = {}
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not message.id or message.fuzzy or not all(strings):
            continue  # msgfmt leaves these out
        prefix = f"{message.context}\x04" if message.context else ""
        if isinstance(message.id, tuple | list):
            expected.update({(prefix + message.id[0], index): string for index, string in enumerate(strings)})
        else:
            expected[prefix + message.id] = message.string
    if compiled != expected:
        return [f"{relative}: out of date with its .po (make i18n)"]
    return []


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"\n{len(found)} problem(s): add the English to the area's locale/<area>/en/LC_MESSAGES/django.po, "
              "then `make i18n`.", file=sys.stderr)
        return 1
    print(f"all strings translated in {len(catalogues())} English catalogues")
    return 0


if __name__ == "__main__":
    sys.exit(main())
