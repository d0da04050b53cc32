"""The public explorer's read-only API under ``/api/v1/public`` (no sign-in, no personal data).

Auditors script against these shapes: keep the documented fields; add, never rename. The lists
answer CSV for ``Accept: text/csv``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from registry.schemas import (
    CertificateDocument,
    PublicBatchPage,
    PublicBatchProvenance,
    PublicKey,
    PublicKeys,
    PublicProjectCollection,
    PublicRetirementPage,
)
from registry.service import keys, public, retirements
from tanhui import spreadsheets
from tanhui.api import problems
from tanhui.auth import SessionDep

router = APIRouter(prefix="/public", tags=["public"])

CSV_MEDIA_TYPE = "text/csv"
CERTIFICATE_ID = Path(max_length=40, pattern=r"^[A-Za-z0-9-]+$")
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
Limit = Annotated[int | None, Query(ge=1, le=public.MAX_PAGE)]


def wants_csv(request: Request) -> bool:
    return CSV_MEDIA_TYPE in request.headers.get("accept", "")


def csv_response(
    header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str, next_cursor: str | None
) -> Response:
    buffer = io.StringIO()
    writer = spreadsheets.csv_writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(
        buffer.getvalue(), media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8", headers=headers
    )


def _csv_doc(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {CSV_MEDIA_TYPE: {}}, "description": description}}


@router.get(
    "/projects",
    response_model=PublicProjectCollection,
    responses={
        **problems(406),
        200: {
            "content": {"application/geo+json": {}, CSV_MEDIA_TYPE: {}},
            "description": "projects as GeoJSON, or CSV without geometry",
        },
    },
    summary="Projects as a GeoJSON FeatureCollection (simplified outlines; CSV with "
    "Accept: text/csv)",
)
def projects(request: Request, session: SessionDep) -> Any:
    collection = public.public_projects(session)
    if wants_csv(request):
        columns = [
            "code",
            "type",
            "status",
            "district",
            "issued_t",
            "retired_t",
            "name",
            "district_adcode",
            "methodology",
            "cooperative",
        ]
        return csv_response(
            columns,
            ([f["properties"][c] for c in columns] for f in collection["features"]),
            "projects.csv",
            None,
        )
    return Response(
        PublicProjectCollection.model_validate(collection).model_dump_json(),
        media_type="application/geo+json",
    )


@router.get(
    "/batches",
    response_model=PublicBatchPage,
    responses={**problems(422), **_csv_doc("a page of batches")},
    summary="Issued batches, oldest first, by cursor (CSV with Accept: text/csv)",
)
def batches(
    request: Request, session: SessionDep, cursor: Cursor = None, limit: Limit = None
) -> Any:
    items, next_cursor = public.public_batches(session, cursor=cursor, limit=limit)
    if wants_csv(request):
        columns = [
            "project_code",
            "type",
            "vintage",
            "serial_first",
            "serial_last",
            "quantity_t",
            "issued_to_holder_t",
            "buffer_t",
            "batch",
            "issued_at",
            "basis",
            "estimate_t",
            "report_sha256",
        ]
        return csv_response(
            columns, ([item[c] for c in columns] for item in items), "batches.csv", next_cursor
        )
    return {"items": items, "next_cursor": next_cursor}


BATCH_PREFIX = Path(
    max_length=60, pattern=r"^[A-Za-z0-9-]+$", description="e.g. THC-BAM-AJ0001-2024-001"
)


@router.get(
    "/batches/{batch}/provenance",
    response_model=PublicBatchProvenance,
    responses=problems(404, 422),
    summary="The MRV run a batch came from: report and input hashes, parcels, estimate, buffer",
)
def batch_provenance(batch: Annotated[str, BATCH_PREFIX], session: SessionDep) -> Any:
    return public.batch_provenance(session, batch)


@router.get(
    "/batches/{batch}/report",
    responses={**problems(404, 422), 200: {"content": {"application/json": {}}}},
    summary="The MRV report a batch was issued from, byte for byte (SHA-256: report_sha256)",
)
def batch_report(batch: Annotated[str, BATCH_PREFIX], session: SessionDep) -> Response:
    return Response(public.batch_report(session, batch), media_type="application/json")


@router.get(
    "/retirements",
    response_model=PublicRetirementPage,
    responses={**problems(422), **_csv_doc("a page of retirements")},
    summary="Retirements, oldest first, by cursor (CSV with Accept: text/csv)",
)
def retirements_page(
    request: Request, session: SessionDep, cursor: Cursor = None, limit: Limit = None
) -> Any:
    items, next_cursor = public.public_retirements(session, cursor=cursor, limit=limit)
    if wants_csv(request):
        columns = [
            "certificate_id",
            "quantity_t",
            "beneficiary",
            "purpose",
            "retired_at",
            "serial_blocks",
            "batch",
            "case_number",
        ]
        return csv_response(
            columns,
            (
                [
                    ";".join(f"{a}..{b}" for a, b in item[c]) if c == "serial_blocks" else item[c]
                    for c in columns
                ]
                for item in items
            ),
            "retirements.csv",
            next_cursor,
        )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/certificates/{certificate_id}",
    response_model=CertificateDocument,
    responses=problems(404, 422),
    summary="A retirement certificate: payload, base64 Ed25519 signature over its canonical "
    "JSON, key id",
)
def certificate(certificate_id: Annotated[str, CERTIFICATE_ID], session: SessionDep) -> Any:
    found = retirements.get_certificate(session, certificate_id)
    return retirements.certificate_document(session, found)


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={**problems(404, 422), 200: {"content": {"application/pdf": {}}}},
    summary="The certificate as PDF (Chinese and English, QR code; embeds the signed JSON)",
)
def certificate_pdf(
    certificate_id: Annotated[str, CERTIFICATE_ID], session: SessionDep
) -> Response:
    found = retirements.get_certificate(session, certificate_id)
    return Response(
        retirements.certificate_pdf(session, found),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{found.id}.pdf"'},
    )


@router.get(
    "/keys",
    response_model=PublicKeys,
    summary="Every public key that signs here (platform, verifiers) and what it may sign: "
    "certificates verify only with the platform's",
)
def public_keys(session: SessionDep) -> Any:
    key_id, public_key = retirements.platform_key_public()
    listed = [
        PublicKey(
            key_id=k.key_id,
            algorithm="Ed25519",
            public_key=k.public_key,
            owner=k.owner,
            use=keys.declared_use(session, k),
        )
        for k in keys.all_public_keys(session)
    ]
    if all(item.key_id != key_id for item in listed):
        listed.insert(
            0,
            PublicKey(
                key_id=key_id,
                algorithm="Ed25519",
                public_key=public_key,
                owner="platform",
                use=keys.USE_PLATFORM,
            ),
        )
    return PublicKeys(keys=listed)
