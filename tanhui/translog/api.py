"""The log's public read API: no login, cacheable (what a given tree size says never changes)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from tanhui.api import problems
from tanhui.auth import SessionDep
from tanhui.translog import merkle
from tanhui.translog import service as log

router = APIRouter(prefix="/public/log", tags=["public", "transparency log"])

IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "public, max-age=5"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class LogLeaf(BaseModel):
    index: int
    entry: str  # the leaf's exact bytes (canonical JSON); leaf hash = SHA-256(0x00 ‖ entry)
    leaf_hash: str  # base64


class LogEntries(BaseModel):
    start: int
    end: int
    entries: list[LogLeaf]


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    hashes: list[str]  # base64, leaf side first (RFC 9162 2.1.3)


class ConsistencyProof(BaseModel):
    first: int
    second: int
    hashes: list[str]  # base64 (RFC 9162 2.1.4)


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 404: {}},
    summary="The log's newest signed checkpoint (C2SP signed note: origin, size, base64 root, "
    "Ed25519 signature line)",
)
def checkpoint(session: SessionDep) -> Response:
    signed = log.current_checkpoint(session)
    if signed is None:
        return Response("the log is empty\n", status_code=404, media_type="text/plain")
    return Response(
        signed.note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": FRESH},
    )


@router.get(
    "/entries",
    response_model=LogEntries,
    responses=problems(422),
    summary="The log's leaves [start, end) in order (at most 1,000 a page)",
)
def entries(
    session: SessionDep,
    response: Response,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(gt=0)],
) -> Any:
    found = log.leaves(session, start, end)
    complete = len(found) == end - start
    response.headers["Cache-Control"] = IMMUTABLE if complete else FRESH
    return LogEntries(
        start=start,
        end=start + len(found),
        entries=[
            LogLeaf(
                index=leaf.index,
                entry=leaf.body,
                leaf_hash=_b64(merkle.leaf_hash(leaf.body.encode("utf-8"))),
            )
            for leaf in found
        ],
    )


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProof,
    responses=problems(422),
    summary="The audit path of entry `index` in the tree of `tree_size` entries",
)
def inclusion(
    session: SessionDep,
    response: Response,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(gt=0)],
) -> Any:
    proof = log.inclusion_proof(session, index, tree_size)
    response.headers["Cache-Control"] = IMMUTABLE
    return InclusionProof(index=index, tree_size=tree_size, hashes=[_b64(h) for h in proof])


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProof,
    responses=problems(422),
    summary="The proof that the tree of `second` entries extends the tree of `first`",
)
def consistency(
    session: SessionDep,
    response: Response,
    first: Annotated[int, Query(gt=0)],
    second: Annotated[int, Query(gt=0)],
) -> Any:
    proof = log.consistency_proof(session, first, second)
    response.headers["Cache-Control"] = IMMUTABLE
    return ConsistencyProof(first=first, second=second, hashes=[_b64(h) for h in proof])


@router.get(
    "/key",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    summary="The log's verifier key (C2SP vkey: origin+keyid+base64(0x01 ‖ Ed25519 key)); it "
    "is also the platform's certificate key: pin it",
)
def verifier_key() -> Response:
    return Response(
        log.verifier().vkey() + "\n",
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
