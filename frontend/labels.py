"""Words for the registry's states and kinds, as people read them (translated where shown).

Templates get these as globals and write ``{{ _(status_labels[project.status]) }}``; a value
without a label is shown as it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from frontend.templating import environment
from tanhui.i18n import N_, translate

PROJECT_STATUS = {
    "draft": N_("Draft"),
    "collected": N_("Collected"),
    "submitted": N_("Submitted for verification"),
    "certified": N_("Certified"),
    "filed": N_("Filed"),
    "issued": N_("Issued"),
    "suspended": N_("Suspended"),
    "terminated": N_("Terminated"),
}
PERIOD_STATUS = {
    "submitted": N_("Awaiting verification"),
    "returned": N_("Returned with comments"),
    "certified": N_("Certified"),
    "filed": N_("Filed"),
    "issued": N_("Issued"),
    "withdrawn": N_("Withdrawn"),
}
PROJECT_TYPE = {
    "bamboo": N_("Bamboo forest sink"),
    "wetland": N_("Wetland sink"),
    "residents": N_("Residents' pooled reductions"),
}
LAND_TYPE = {"bamboo": N_("Bamboo forest"), "wetland": N_("Wetland"), "other": N_("Other land")}
BLOCK_STATE = {
    "held": N_("Held"),
    "listed": N_("Listed for sale"),
    "pledged": N_("Pledged"),
    "retired": N_("Retired"),
    "cancelled": N_("Cancelled (buffer)"),
}
PURPOSE = {
    "annual_neutrality": N_("Annual carbon neutrality"),
    "event_neutrality": N_("Event carbon neutrality"),
    "product_footprint": N_("Product footprint offset"),
    "ecological_compensation": N_("Ecological compensation"),
    "judicial_restoration": N_("Judicial ecological restoration"),
}
LOSS_CAUSE = {
    "fire": N_("Fire"),
    "pest": N_("Pests"),
    "typhoon": N_("Typhoon"),
    "illegal_harvest": N_("Illegal harvest"),
}
REVERSAL_STATUS = {
    "proposed": N_("Proposed, awaiting the authority"),
    "confirmed": N_("Confirmed"),
    "rejected": N_("Rejected"),
}
PLEDGE_STATUS = {
    "proposed": N_("Awaiting the lender"),
    "active": N_("Active"),
    "default_declared": N_("Default declared"),
    "defaulted": N_("Default confirmed"),
    "released": N_("Released"),
    "enforced": N_("Enforced"),
}
CONTRACT_STATUS = {"active": N_("Active"), "terminated": N_("Terminated")}
PRICE_RULE = {"ets_indexed": N_("Indexed to the national ETS price"), "fixed": N_("Fixed price")}
RUN_STATE = {
    "queued": N_("Waiting"),
    "running": N_("Running"),
    "done": N_("Report ready"),
    "failed": N_("Failed"),
    "submitted": N_("Submitted for verification"),
}
POSTING_CODES = {
    "collection_payment": N_("Collection payment"),
    "adjustment": N_("Adjustment"),
}
DISTRICT_NAMES = {
    "330502": N_("Wuxing"),
    "330503": N_("Nanxun"),
    "330521": N_("Deqing"),
    "330522": N_("Changxing"),
    "330523": N_("Anji"),
}


def tonnes(value: int | float | None) -> str:
    """Whole tonnes with thousands separators (``12,345``)."""
    if value is None:
        return ""
    return f"{round(value):,}"


def number(value: Any, digits: int = 2) -> str:
    """A measured figure (hectares, tCO2e) rounded for reading; exact values stay in the data."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError:
            return str(value)
    return f"{float(value):,.{digits}f}"


def iso(value: date | None) -> str:
    return value.isoformat() if value else ""


environment.globals.update(
    project_status_labels=PROJECT_STATUS,
    period_status_labels=PERIOD_STATUS,
    project_type_labels=PROJECT_TYPE,
    land_type_labels=LAND_TYPE,
    block_state_labels=BLOCK_STATE,
    purpose_labels=PURPOSE,
    loss_cause_labels=LOSS_CAUSE,
    reversal_status_labels=REVERSAL_STATUS,
    pledge_status_labels=PLEDGE_STATUS,
    contract_status_labels=CONTRACT_STATUS,
    price_rule_labels=PRICE_RULE,
    district_labels=DISTRICT_NAMES,
    posting_code_labels=POSTING_CODES,
    run_state_labels=RUN_STATE,
)
environment.filters["tonnes"] = tonnes
environment.filters["number"] = number
environment.filters["iso"] = iso


def label(table: dict[str, str], value: object) -> str:
    """The untranslated label of ``value`` (its text when the table has none)."""
    return table.get(str(value), str(value))


def district_namer(locale: str) -> Callable[[str], str]:
    """A district's name in ``locale`` from its adcode (for the maps' labels)."""

    def name(adcode: str) -> str:
        return translate(DISTRICT_NAMES.get(adcode, adcode), locale)

    return name
