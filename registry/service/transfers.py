"""Moving credits between holders: direct transfers, and the hooks the market uses.

Whoever moves credits of a batch moves its serial blocks in the same transaction: either with
:func:`transfer` (blocks and wallet entry together), or, when the wallet entry is part of a
larger one (a sale that also pays the seller and the farmers), with :func:`move_serials`
(blocks only) next to the caller's own posting of the same tonnes.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from registry import ledger
from registry.errors import InsufficientCredits, RegistryNotFound
from registry.models import Batch, BlockState, SerialBlock
from registry.service import blocks as block_service
from registry.service import suspension
from registry.service.actors import Actor, owner_org_id, require
from tanhui import audit
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind

MOVABLE_STATE = BlockState.held


def _batch(session: Session, batch_id: uuid.UUID) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    return batch


def move_serials(
    session: Session,
    *,
    batch_id: uuid.UUID,
    from_owner: str,
    to_owner: str,
    quantity_t: int,
    kind: str = "transfer",
    reference: str | None = None,
    listing_ref: str | None = None,
) -> list[SerialBlock]:
    """Give ``quantity_t`` tonnes of ``from_owner``'s available blocks (or of its listing
    ``listing_ref``) to ``to_owner``. No wallet posting: the caller posts the same tonnes."""
    if from_owner == to_owner:
        raise InsufficientCredits(N_("Credits cannot move to their own holder."))
    suspension.ensure_movable(session, _batch(session, batch_id), from_owner)
    state = BlockState.listed if listing_ref is not None else MOVABLE_STATE
    taken = block_service.take(
        session,
        batch_id=batch_id,
        holder=from_owner,
        quantity=quantity_t,
        lowest=False,
        state=state,
        listing_ref=listing_ref,
    )
    block_service.change(
        session,
        taken,
        kind=kind,
        reference=reference,
        holder=to_owner,
        state=BlockState.held,
    )
    return taken


def transfer(
    session: Session,
    *,
    actor: Actor,
    batch_id: uuid.UUID,
    to_organisation_id: uuid.UUID,
    quantity_t: int,
    reference: str | None = None,
    idempotency_key: str | None = None,
) -> list[tuple[str, str]]:
    """The actor's organisation gives credits to another organisation (off-market)."""
    require(actor, *OrgKind, action="Transferring credits", admin=False)
    batch = _batch(session, batch_id)
    recipient = session.get(Organisation, to_organisation_id)
    if recipient is None:
        raise RegistryNotFound(
            N_("No {what} {id}."), what="organisation", id=str(to_organisation_id)
        )
    to_owner = f"org:{recipient.id}"
    taken = move_serials(
        session,
        batch_id=batch.id,
        from_owner=actor.owner,
        to_owner=to_owner,
        quantity_t=quantity_t,
        reference=reference,
    )
    pairs = block_service.serial_pairs(batch, taken)
    ledger.post(
        session,
        code="transfer",
        asset=batch.asset_code,
        moves=[ledger.Move(actor.owner, to_owner, quantity_t)],
        metadata={"serial_blocks": ledger.blocks_metadata(pairs), "reference": reference},
        idempotency_key=idempotency_key,
    )
    audit.record(
        session,
        actor=actor.ref,
        action="credits.transferred",
        subject_type="batch",
        subject_id=batch.id,
        payload={
            "batch": batch.serial_prefix,
            "from": actor.owner,
            "to": to_owner,
            "quantity_t": quantity_t,
            "serial_blocks": [list(p) for p in pairs[:50]],
        },
    )
    return pairs


# --- the market's hooks --------------------------------------------------------------------


def list_credits(
    session: Session, *, batch_id: uuid.UUID, owner: str, quantity_t: int, listing_ref: str
) -> list[SerialBlock]:
    """Mark ``quantity_t`` of the owner's available tonnes as offered under ``listing_ref``:
    they can then only move by a sale of that listing (or come back with :func:`unlist`)."""
    suspension.ensure_movable(session, _batch(session, batch_id), owner)
    taken = block_service.take(
        session, batch_id=batch_id, holder=owner, quantity=quantity_t, lowest=False
    )
    block_service.change(
        session,
        taken,
        kind="listing",
        reference=listing_ref,
        state=BlockState.listed,
        listing_ref=listing_ref,
    )
    return taken


def unlist(
    session: Session, *, batch_id: uuid.UUID, owner: str, listing_ref: str, quantity_t: int
) -> list[SerialBlock]:
    taken = block_service.take(
        session,
        batch_id=batch_id,
        holder=owner,
        quantity=quantity_t,
        state=BlockState.listed,
        listing_ref=listing_ref,
    )
    block_service.change(
        session, taken, kind="unlisting", reference=listing_ref, state=BlockState.held
    )
    return taken


def organisation_name(session: Session, owner: str) -> str | None:
    """The public name behind a wallet owner: organisations by name, system accounts by role."""
    organisation_id = owner_org_id(owner)
    if organisation_id is not None:
        organisation = session.get(Organisation, organisation_id)
        return organisation.name if organisation else None
    if owner == f"system:{ledger.BUFFER_POOL}":
        return "buffer pool"
    return None
