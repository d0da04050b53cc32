"""Which links the header shows: public ones, then those of the signed-in face."""

from __future__ import annotations

from tanhui.auth import Principal
from tanhui.i18n import N_
from tanhui.models import OrgKind

PUBLIC_LINKS: list[tuple[str, str]] = [
    ("/", N_("Home")),
    ("/explorer", N_("Project explorer")),
    ("/verify", N_("Verify a certificate")),
]
RESIDENT_LINKS: list[tuple[str, str]] = [("/app", N_("My carbon points"))]
ADMIN_LINKS: list[tuple[str, str]] = [
    ("/admin", N_("Administration")),
    ("/admin/audit", N_("Audit log")),
]
ORGANISATION_LINKS: dict[OrgKind, list[tuple[str, str]]] = {kind: [] for kind in OrgKind}
ORGANISATION_LINKS[OrgKind.cooperative] += [
    ("/coop", N_("Cooperative portal")),
    ("/coop/households", N_("Households")),
    ("/coop/contracts", N_("Contracts")),
    ("/coop/parcels", N_("Parcels")),
    ("/coop/pledges", N_("Pledges")),
]
ORGANISATION_LINKS[OrgKind.verifier] += [("/verifier", N_("Verifier console"))]
ORGANISATION_LINKS[OrgKind.authority] += [("/authority", N_("Authority console"))]


def links_for(principal: Principal | None) -> list[tuple[str, str]]:
    links = list(PUBLIC_LINKS)
    if principal is None:
        return links
    if principal.resident is not None:
        return links + RESIDENT_LINKS
    if principal.is_platform_admin:
        links += ADMIN_LINKS
    if principal.organisation is not None:
        links += ORGANISATION_LINKS.get(principal.organisation.kind, [])
    return links
