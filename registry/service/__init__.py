"""Use cases of the registry: plain functions taking a Session (they flush, never commit).

- :mod:`~registry.service.households`: farmer households (personal data sealed);
- :mod:`~registry.service.parcels`, :mod:`~registry.service.imports`: parcels, shares, import
  from files, the overlap check;
- :mod:`~registry.service.contracts`: collection contracts, ETS prices, settlements;
- :mod:`~registry.service.projects`: projects and their lifecycle; :mod:`~registry.service.keys`:
  organisations' signing keys;
- :mod:`~registry.service.issuance`, :mod:`~registry.service.blocks`,
  :mod:`~registry.service.transfers`: batches, serial blocks, transfers and the market's hooks;
- :mod:`~registry.service.retirements` (with certificates), :mod:`~registry.service.pledges`,
  :mod:`~registry.service.reversals`;
- :mod:`~registry.service.public`: what the public explorer reads.
"""

from registry.service import (
    actors,
    blocks,
    contracts,
    households,
    imports,
    issuance,
    keys,
    parcels,
    pledges,
    projects,
    public,
    retirements,
    reversals,
    transfers,
)
from registry.service.actors import Actor

__all__ = [
    "Actor",
    "actors",
    "blocks",
    "contracts",
    "households",
    "imports",
    "issuance",
    "keys",
    "parcels",
    "pledges",
    "projects",
    "public",
    "retirements",
    "reversals",
    "transfers",
]
