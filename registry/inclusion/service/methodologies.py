"""The factor tables in force: the published built-in versions plus those an administrator
added. A new version takes effect from a future day only (never retroactively), so no receipt
already given can be contradicted by the table that produced it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from mrv.inclusive import (
    DEFAULT_TABLE,
    FactorStatus,
    FactorTable,
    FactorTableError,
    FactorVersion,
    Scenario,
    local_date,
    spec_for,
)
from registry.inclusion.errors import FactorVersionExists, InvalidFactorVersion
from registry.inclusion.models import InclusionFactorVersion
from tanhui import audit
from tanhui.db import utcnow
from tanhui.i18n import N_


def _as_version(row: InclusionFactorVersion) -> FactorVersion:
    spec = spec_for(row.scenario)
    assert spec is not None  # checked when added
    return FactorVersion(
        scenario=Scenario(row.scenario),
        variant=row.variant,
        version=row.version,
        unit=spec.unit,
        grams_per_unit=Decimal(row.grams_per_unit),
        baseline=row.baseline,
        source=row.source,
        valid_from=row.valid_from,
        daily_cap=Decimal(row.daily_cap),
        status=FactorStatus(row.status),
        bonus_points_per_unit=row.bonus_points_per_unit,
        notes=row.notes,
    )


def factor_table(session: Session) -> FactorTable:
    """Built-in versions and the administrator's, as one table."""
    rows = session.exec(select(InclusionFactorVersion)).all()
    if not rows:
        return DEFAULT_TABLE
    return DEFAULT_TABLE.with_versions(_as_version(row) for row in rows)


@dataclass(frozen=True)
class VersionView:
    version: FactorVersion
    valid_to: date | None


def methodology_rows(table: FactorTable) -> list[VersionView]:
    """Every version with the last day it applied (the public history)."""
    rows: list[VersionView] = []
    for version in table.versions():
        history = table.history(version.scenario.value, version.variant)
        later = [item.valid_from for item in history if item.valid_from > version.valid_from]
        rows.append(VersionView(version, min(later) - timedelta(days=1) if later else None))
    return rows


def add_version(
    session: Session,
    *,
    scenario: str,
    variant: str,
    version: str,
    grams_per_unit: Decimal,
    baseline: str,
    source: str,
    valid_from: date,
    daily_cap: Decimal,
    participation: bool = False,
    bonus_points_per_unit: int = 0,
    notes: str = "",
    actor: str,
    today: date | None = None,
) -> FactorVersion:
    """Add a factor version taking effect on ``valid_from`` (tomorrow at the earliest)."""
    spec = spec_for(scenario)
    if spec is None:
        raise InvalidFactorVersion(
            N_("Unknown scenario {scenario}."),
            scenario=scenario,
            errors=[{"field": "scenario", "message": "unknown"}],
        )
    first_day = (today or local_date(utcnow())) + timedelta(days=1)
    if valid_from < first_day:
        raise InvalidFactorVersion(
            N_("A new version takes effect from {day} at the earliest, never retroactively."),
            day=first_day.isoformat(),
            errors=[{"field": "valid_from", "message": "must be in the future"}],
        )
    taken = session.exec(
        select(InclusionFactorVersion.id)
        .where(col(InclusionFactorVersion.scenario) == scenario)
        .where(col(InclusionFactorVersion.variant) == variant)
        .where(col(InclusionFactorVersion.version) == version)
    ).first()
    table = factor_table(session)
    if taken is not None or any(
        item.version == version for item in table.history(scenario, variant)
    ):
        raise FactorVersionExists(
            N_("{scenario} version {version} already exists."), scenario=scenario, version=version
        )
    candidate = FactorVersion(
        scenario=Scenario(scenario),
        variant=variant,
        version=version,
        unit=spec.unit,
        grams_per_unit=grams_per_unit,
        baseline=baseline.strip(),
        source=source.strip(),
        valid_from=valid_from,
        daily_cap=daily_cap,
        status=FactorStatus.participation if participation else FactorStatus.published,
        bonus_points_per_unit=bonus_points_per_unit,
        notes=notes.strip(),
    )
    try:
        table.with_versions([candidate])
    except FactorTableError as error:
        raise InvalidFactorVersion(
            N_("The version is not valid: {reason}."), reason=str(error)
        ) from None
    row = InclusionFactorVersion(
        scenario=scenario,
        variant=variant,
        version=version,
        unit=spec.unit.value,
        grams_per_unit=str(grams_per_unit),
        baseline=candidate.baseline,
        source=candidate.source,
        valid_from=valid_from,
        daily_cap=str(daily_cap),
        status=candidate.status.value,
        bonus_points_per_unit=bonus_points_per_unit,
        notes=candidate.notes,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.methodology.version_added",
        subject_type="inclusion_factor_version",
        subject_id=row.id,
        payload={
            "scenario": scenario,
            "variant": variant,
            "version": version,
            "grams_per_unit": str(grams_per_unit),
            "valid_from": valid_from.isoformat(),
            "source": candidate.source,
        },
    )
    return candidate
