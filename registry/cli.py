"""`tanhui registry ...` and `tanhui certificate ...` commands.

Operator commands act as ``system:cli`` (platform-admin rights, recorded in the audit chain).
``tanhui certificate verify`` needs no database and no network: it checks a downloaded
certificate (JSON or PDF) with a public key.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    help="Projects, parcels, households, contracts, lifecycle, batches, serials, retirements.",
    no_args_is_help=True,
)
certificate_app = typer.Typer(
    help="Retirement certificates: verify a downloaded JSON or PDF offline.",
    no_args_is_help=True,
)


def _mapping(raw: str) -> dict[str, object]:
    text = Path(raw[1:]).read_text("utf-8") if raw.startswith("@") else raw
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the mapping must be a JSON object")
    return value


@app.command("import-parcels")
def import_parcels(
    path: Annotated[Path, typer.Argument(help=".geojson, .gpkg or zipped Shapefile (.zip)")],
    org: Annotated[str, typer.Option("--org", help="the cooperative's name")],
    mapping: Annotated[
        str,
        typer.Option(
            help='JSON or @file: {"code": "ATTR", "land_type": "ATTR", "village": "ATTR", '
            '"forest_right_cert": "ATTR", "registered_area_mu": "ATTR", '
            '"household_national_id": "ATTR", "default_land_type": "bamboo"}'
        ),
    ],
    project: Annotated[
        str | None, typer.Option(help="add the parcels to this draft project (overlap-checked)")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="GeoPackage layer")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Import parcels; every row that cannot be imported is reported with its reason."""
    from registry import importer
    from registry.service import imports, projects
    from registry.service.actors import Actor
    from tanhui import identity
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    try:
        rules = imports.ImportMapping.from_dict(_mapping(mapping))
        rows = importer.read_rows(path, layer=layer)
    except (OSError, ValueError) as error:
        fail(str(error))
    except DomainError as error:
        fail(str(error))
    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            organisation = next(
                (o for o in identity.list_organisations(session) if o.name == org), None
            )
            if organisation is None:
                fail(f"no organisation named {org}")
            project_id = None
            if project:
                found = projects.find_by_code(session, project)
                if found is None:
                    fail(f"no project {project}")
                project_id = found.id
            report = imports.import_parcels(
                session,
                actor=Actor.system("cli"),
                cooperative_id=organisation.id,
                rows=rows,
                mapping=rules,
                project_id=project_id,
                source_name=path.name,
            )
    except DomainError as error:
        fail(str(error))
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "rows": report.rows,
                    "imported": report.imported,
                    "rejected": [r.__dict__ for r in report.rejected],
                    "project": report.project_code,
                },
                ensure_ascii=False,
            )
        )
        return
    typer.echo(f"imported {report.imported} of {report.rows} rows")
    for rejection in report.rejected:
        typer.echo(f"  row {rejection.row} ({rejection.code or '-'}): {rejection.reason}")


@app.command("import-ets-prices")
def import_ets_prices(
    path: Annotated[Path, typer.Argument(help="CSV with a date and a close (CNY/t) column")],
) -> None:
    """Import national ETS closing prices (all rows or none)."""
    from registry.service import contracts
    from registry.service.actors import Actor
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        fail(str(error))
    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            rows = contracts.import_ets_prices(
                session, actor=Actor.system("cli"), csv_text=text, source=path.name
            )
    except DomainError as error:
        fail(str(error))
    finally:
        engine.dispose()
    typer.echo(f"imported {rows} prices")


@app.command("settle-contracts")
def settle_contracts(
    on: Annotated[
        str, typer.Option("--date", help="settle every period begun by this day (YYYY-MM-DD)")
    ],
) -> None:
    """Pay every due, unpaid collection settlement to the households (run it from cron)."""
    from registry.pricing import format_cny
    from registry.service import contracts
    from registry.service.actors import Actor
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import retrying
    from tanhui.errors import DomainError

    try:
        day = date.fromisoformat(on)
    except ValueError:
        fail(f"--date {on!r} is not a date (YYYY-MM-DD)")
    engine = engine_or_exit(settings_or_exit())
    try:
        lines = retrying(
            engine,
            lambda session: [
                (
                    contracts.get_contract(
                        session, actor=Actor.system("cli"), contract_id=item.contract_id
                    ).code,
                    item.sequence,
                    item.price_fen_per_t,
                    item.area_mu,
                    item.amount_fen,
                )
                for item in contracts.settle_due(session, actor=Actor.system("cli"), on=day)
            ],
        )
    except DomainError as error:
        fail(str(error), code=1)
    finally:
        engine.dispose()
    for code, sequence, price, area, amount in lines:
        typer.echo(
            f"{code} period {sequence}: {format_cny(price)} CNY/t × {area} mu"
            f" → {format_cny(amount)} CNY"
        )
    typer.echo(f"settled {len(lines)} periods")


@certificate_app.command("verify")
def verify_certificate(
    path: Annotated[Path, typer.Argument(help="a certificate downloaded as JSON or PDF")],
    keys: Annotated[
        Path | None,
        typer.Option(
            help="the platform's published keys: the JSON of GET /api/v1/public/keys (only the "
            "platform's entries count) or GET /api/v1/public/log/key"
        ),
    ] = None,
    public_key: Annotated[
        str | None, typer.Option(help="a base64 raw Ed25519 platform key to verify with")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="a signed log checkpoint you trust: also prove the certificate is in it"),
    ] = None,
    proof: Annotated[
        Path | None,
        typer.Option(
            help="the JSON of GET /api/v1/public/log/proofs/inclusion for that checkpoint"
        ),
    ] = None,
) -> None:
    """Check a certificate offline against pinned platform keys. Exit 0 when valid, 1 when not
    (an unknown or an organisation's key included), 2 when a file cannot be read.

    Keys are pinned by --keys or --public-key, else by the key ids in TANHUI_CERTIFICATE_KEY_IDS
    (the platform's fingerprint, comma-separated), else by the local platform key file
    (TANHUI_SIGNING_KEY_FILE). A key inside the document is never trusted on its own.
    """
    import os

    from registry import certificates
    from tanhui.crypto import key_id_for, unb64

    def stop(message: str, code: int) -> NoReturn:
        typer.echo(f"tanhui: {message}", err=True)
        raise typer.Exit(code)

    try:
        document = certificates.parse_document(path.read_bytes())
    except (OSError, ValueError) as error:
        stop(str(error), 2)
    pinned: dict[str, bytes] = {}
    try:
        if keys is not None:
            pinned.update(certificates.keys_from_json(keys.read_bytes()))
        if public_key:
            raw = unb64(public_key.strip())
            pinned[key_id_for(raw)] = raw
    except (OSError, ValueError, KeyError) as error:
        stop(f"cannot read the public keys: {error}", 2)
    if not pinned:
        fingerprints = {
            item.strip()
            for item in os.environ.get("TANHUI_CERTIFICATE_KEY_IDS", "").split(",")
            if item.strip()
        }
        embedded = certificates.embedded_key(document)
        if embedded is not None and key_id_for(embedded) in fingerprints:
            pinned[key_id_for(embedded)] = embedded
    if not pinned:
        local = _local_platform_key()
        if local is not None:
            pinned[key_id_for(local)] = local
    result = certificates.verify_document(document, pinned)
    if not result.ok:
        stop(f"certificate {result.certificate_id or '?'} INVALID: {result.reason}", 1)
    payload = document["payload"]
    logged = ""
    if checkpoint is not None:
        try:
            checkpoint_note = checkpoint.read_text("utf-8")
            given = json.loads(proof.read_text("utf-8")) if proof is not None else None
        except (OSError, ValueError) as error:
            stop(f"cannot read the checkpoint or the proof: {error}", 2)
        reason = certificates.verify_logged(document, checkpoint_note, pinned, given)
        if reason is not None:
            stop(f"certificate {result.certificate_id} NOT PROVEN IN THE LOG: {reason}", 1)
        logged = f", in the log at index {(given or document['log'])['index']}"
    typer.echo(
        f"certificate {result.certificate_id} valid: {payload.get('quantity_t')} t retired for "
        f"{payload.get('beneficiary')} ({payload.get('purpose')}), key {result.key_id}{logged}"
    )


def _local_platform_key() -> bytes | None:
    """The platform's public key from the local key file, if this machine has one."""
    import os

    from tanhui.crypto import SigningKey

    configured = os.environ.get("TANHUI_SIGNING_KEY_FILE")
    state = Path(os.environ.get("TANHUI_STATE_DIR", ".tanhui"))
    path = Path(configured) if configured else state / "signing_key.pem"
    try:
        return SigningKey.from_pem(path.read_bytes()).public_raw
    except (OSError, ValueError):
        return None
