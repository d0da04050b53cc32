"""Keeping the message catalogue complete: ``python -m tanhui.catalogue check|update|fill F``.

``update`` adds every newly marked string (``N_``, ``_``, ``translate``, ``gettext`` in Python
and templates) to the zh_CN catalogue with an empty translation and drops none; ``fill F`` sets
translations from a JSON object ``{"English msgid": "中文"}``; ``check`` lists the strings still
without a Chinese translation (a test runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from tanhui.i18n import LOCALE_DIR

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tanhui", "registry", "mrv", "wallet", "market", "frontend")
KEYWORDS = {"N_": None, "_": None, "translate": (1,), "gettext": None}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/templates/**.svg", "jinja2"),
    ("**.py", "python"),
]
ZH_PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"


def marked_strings() -> dict[str, str]:
    """Every marked msgid, with one place it is used."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        folder = ROOT / package
        if not folder.exists():
            continue
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(folder), method_map=METHODS, keywords=KEYWORDS, comment_tags=()
        ):
            text = message if isinstance(message, str) else message[0]
            if text:
                found.setdefault(text, f"{package}/{filename}:{lineno}")
    return found


def read_catalogue() -> Catalog:
    if not ZH_PO.exists():
        return Catalog(locale="zh_CN", project="tanhui")
    with ZH_PO.open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def missing() -> dict[str, str]:
    catalogue = read_catalogue()
    result = {}
    for text, where in marked_strings().items():
        entry = catalogue.get(text)
        if entry is None or not entry.string:
            result[text] = where
    return result


def update() -> int:
    catalogue = read_catalogue()
    added = 0
    for text, where in marked_strings().items():
        if catalogue.get(text) is None:
            catalogue.add(
                text, "", locations=[(where.rsplit(":", 1)[0], int(where.rsplit(":", 1)[1]))]
            )
            added += 1
    ZH_PO.parent.mkdir(parents=True, exist_ok=True)
    with ZH_PO.open("wb") as handle:
        write_po(handle, catalogue, width=100, sort_output=True, omit_header=False)
    return added


def fill(translations: dict[str, str]) -> int:
    catalogue = read_catalogue()
    changed = 0
    for text, chinese in translations.items():
        entry = catalogue.get(text)
        if entry is None:
            catalogue.add(text, chinese)
        else:
            entry.string = chinese
        changed += 1
    with ZH_PO.open("wb") as handle:
        write_po(handle, catalogue, width=100, sort_output=True, omit_header=False)
    return changed


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        print(f"added {update()} new strings to {ZH_PO}")
    elif command == "fill":
        import json

        translations = json.loads(Path(sys.argv[2]).read_text("utf-8"))
        print(f"set {fill(translations)} translations")
    todo = missing()
    for text, where in sorted(todo.items(), key=lambda item: item[1]):
        print(f"{where}: {text}")
    if todo:
        print(f"{len(todo)} strings without a zh_CN translation", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
