"""Every CSV the platform writes goes through :func:`csv_writer`, which neutralises formulas.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in
some, a tab or carriage return) as a formula: a beneficiary named ``=HYPERLINK("http://…")`` in
the public retirements export became a live link in an auditor's Excel (issue 16). Text cells
that start so get a leading apostrophe (OWASP's "CSV injection" advice), which spreadsheets show
as text and hide; numbers we wrote ourselves (``int``, ``Decimal``) are left as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with ``'``; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows are neutralised cell by cell."""

    def __init__(self, buffer: _Writable, **options: Any) -> None:
        self._writer = csv.writer(buffer, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(buffer: _Writable, **options: Any) -> SafeWriter:
    return SafeWriter(buffer, **options)
