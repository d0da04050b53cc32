"""Serial numbers of credits: ``THC-{BAM|WET|RES}-{project}-{vintage}-{batch}-{first}-{last}``.

Every issued tonne has exactly one serial. A *block* is a run of consecutive tonnes of one batch,
written with its first and last tonne (``THC-BAM-AJ0001-2024-001-000001-001000`` is 1,000 t);
the serial of a single tonne is the block whose first and last are equal. The prefix up to the
batch number names the batch (and its asset in the wallet). Pure functions, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

SERIAL_PROGRAMME = "THC"
TONNE_DIGITS = 6  # zero-padded width of first/last; wider batches simply use more digits
BATCH_DIGITS = 3
MAX_PROJECT_CODE_LENGTH = 12
PROJECT_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")
_SERIAL = re.compile(
    r"^THC-(?P<kind>BAM|WET|RES)-(?P<project>[A-Z][A-Z0-9]{1,11})-(?P<vintage>\d{4})"
    r"-(?P<batch>\d{3,})(?:-(?P<first>\d{6,})(?:-(?P<last>\d{6,}))?)?$"
)


class ProjectType(StrEnum):
    bamboo = "bamboo"
    wetland = "wetland"
    residents = "residents"  # pooled residents' reductions (carbon inclusion)


TYPE_CODES: dict[ProjectType, str] = {
    ProjectType.bamboo: "BAM",
    ProjectType.wetland: "WET",
    ProjectType.residents: "RES",
}


class SerialFormatError(ValueError):
    """The text is not a serial number of this registry."""


def batch_prefix(project_type: ProjectType, project_code: str, vintage: int, batch_no: int) -> str:
    """``THC-BAM-AJ0001-2024-001``: the batch part of every serial in the batch."""
    if not PROJECT_CODE_PATTERN.match(project_code):
        raise SerialFormatError(f"bad project code {project_code!r}")
    if not 1000 <= vintage <= 9999:
        raise SerialFormatError(f"bad vintage {vintage}")
    if batch_no < 1:
        raise SerialFormatError(f"bad batch number {batch_no}")
    return (
        f"{SERIAL_PROGRAMME}-{TYPE_CODES[project_type]}-{project_code}-{vintage}"
        f"-{batch_no:0{BATCH_DIGITS}d}"
    )


def block_serial(prefix: str, first: int, last: int) -> str:
    """The serial of tonnes ``first..last`` (1-based, inclusive) of the batch ``prefix``."""
    if first < 1 or last < first:
        raise SerialFormatError(f"bad block {first}-{last}")
    return f"{prefix}-{first:0{TONNE_DIGITS}d}-{last:0{TONNE_DIGITS}d}"


def tonne_serial(prefix: str, number: int) -> str:
    return block_serial(prefix, number, number)


@dataclass(frozen=True)
class ParsedSerial:
    prefix: str
    type_code: str
    project_code: str
    vintage: int
    batch_no: int
    first: int | None  # None: the whole batch
    last: int | None

    @property
    def quantity_t(self) -> int | None:
        if self.first is None or self.last is None:
            return None
        return self.last - self.first + 1


def parse(serial: str) -> ParsedSerial:
    """Parse a batch prefix, a one-tonne serial (``...-000007``) or a block serial."""
    match = _SERIAL.match(serial.strip().upper())
    if match is None:
        raise SerialFormatError(f"not a Tanhui serial: {serial!r}")
    first = int(match["first"]) if match["first"] else None
    last = int(match["last"]) if match["last"] else first
    if first is not None and (first < 1 or last is None or last < first):
        raise SerialFormatError(f"bad block in {serial!r}")
    prefix = (
        f"{SERIAL_PROGRAMME}-{match['kind']}-{match['project']}-{match['vintage']}-{match['batch']}"
    )
    return ParsedSerial(
        prefix=prefix,
        type_code=match["kind"],
        project_code=match["project"],
        vintage=int(match["vintage"]),
        batch_no=int(match["batch"]),
        first=first,
        last=last,
    )


def split_block(first: int, last: int, quantity: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Split ``first..last`` into its first ``quantity`` tonnes and the rest (both non-empty)."""
    if not 0 < quantity < last - first + 1:
        raise ValueError("the split must leave two non-empty blocks")
    return (first, first + quantity - 1), (first + quantity, last)
