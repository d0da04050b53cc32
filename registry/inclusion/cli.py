"""`tanhui partners ...`, `tanhui residents ...` and `tanhui points ...`: the commands partners'
integrators and operators script against (their output formats are part of the contract)."""

from __future__ import annotations

from typing import Annotated

import typer

partners_app = typer.Typer(
    help="Data partners that report residents' behaviours.", no_args_is_help=True
)
residents_app = typer.Typer(help="Residents taking part in carbon inclusion.", no_args_is_help=True)
points_app = typer.Typer(help="Carbon points: pooling residents' reductions.", no_args_is_help=True)


@partners_app.command("create")
def partners_create(
    name: Annotated[str, typer.Option(help="the partner organisation's name (created if new)")],
    scenarios: Annotated[str, typer.Option(help="comma-separated scenarios, e.g. bus,metro")],
) -> None:
    """Register a data partner; prints `PARTNER_ID SECRET` on one line (the secret is not shown
    again)."""
    from registry.inclusion.service import partners
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            created = partners.create_partner(
                session, name=name, scenarios=scenarios.split(","), actor="system:cli"
            )
            partner_id, secret = created.partner.id, created.secret
    except DomainError as error:
        fail(str(error))
    finally:
        engine.dispose()
    typer.echo(f"{partner_id} {secret}")


@partners_app.command("list")
def partners_list() -> None:
    """Every partner: id, scenarios, active keys, name (tab-separated)."""
    from registry.inclusion.service import partners
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import unit_of_work

    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            lines = [
                "\t".join(
                    [
                        str(partner.id),
                        partner.scenarios,
                        str(len(partners.keys_of(session, partner.id, active_only=True))),
                        organisation.name,
                    ]
                )
                for partner, organisation in partners.list_partners(session)
            ]
    finally:
        engine.dispose()
    for line in lines:
        typer.echo(line)


@residents_app.command("create")
def residents_create(
    phone: Annotated[str, typer.Option(help="mobile phone number, e.g. 13800000000")],
    name: Annotated[str, typer.Option(help="name shown in the app")] = "",
) -> None:
    """Register a resident (accounts opened); prints the resident id alone."""
    from registry.inclusion.service import residents
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            resident_id = residents.register_resident(
                session, phone=phone, display_name=name, actor="system:cli"
            ).id
    except DomainError as error:
        fail(str(error))
    finally:
        engine.dispose()
    typer.echo(str(resident_id))


@points_app.command("methodologies")
def points_methodologies() -> None:
    """The factor tables in force and their history (tab-separated: scenario, variant, version,
    unit, grams per unit, valid from, valid to, source)."""
    from registry.inclusion.service import methodologies
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import unit_of_work

    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            rows = methodologies.methodology_rows(methodologies.factor_table(session))
    finally:
        engine.dispose()
    for row in rows:
        version = row.version
        typer.echo(
            "\t".join(
                [
                    version.scenario.value,
                    version.variant or "-",
                    version.version,
                    version.unit.value,
                    str(version.grams_per_unit),
                    version.valid_from.isoformat(),
                    row.valid_to.isoformat() if row.valid_to else "-",
                    version.source,
                ]
            )
        )


@points_app.command("pool")
def points_pool(
    month: Annotated[str, typer.Option(help="the month to pool, YYYY-MM")],
    project: Annotated[
        str | None, typer.Option(help="the residents' (RES) project code, if several")
    ] = None,
) -> None:
    """Pool a month of residents' reductions into the RES project: settle pools whose batch
    was issued, pool the month (grams into the pool, whole tonnes claimed, remainder carried),
    and submit it as a monitoring period. Prints one line per step."""
    from sqlmodel import col, select

    from registry.inclusion.models import InclusionPool
    from registry.inclusion.service import pooling
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    engine = engine_or_exit(settings_or_exit())
    lines: list[str] = []
    try:
        with unit_of_work(engine) as session:
            settled = pooling.settle_pools(session)
            if settled:
                lines.append(f"settled {settled} pool(s) whose batch was issued")
            pool = session.exec(
                select(InclusionPool).where(col(InclusionPool.month) == month)
            ).first()
            if pool is None:
                pool = pooling.pool_month(session, month=month)
                lines.append(
                    f"pooled {pool.month}: {pool.residents} residents, {pool.pooled_g} g + "
                    f"{pool.carried_in_g} g carried in = {pool.tonnes} t + {pool.carried_out_g} g "
                    "carried over"
                )
            if pool.tonnes and pool.status == "pooled":
                outcome = pooling.submit_pool(session, pool, project_code=project)
                lines.append(f"{pool.month}: {outcome}")
            lines.append(f"{pool.month}: {pool.status}")
    except DomainError as error:
        fail(str(error))
    finally:
        engine.dispose()
    for line in lines:
        typer.echo(line)


@points_app.command("prune")
def points_prune(
    batch: Annotated[int, typer.Option(min=100, max=100_000, help="rows per transaction")] = 10_000,
) -> None:
    """Delete activity fingerprints and daily-cap counters that can decide nothing any more
    (older than the 7-day window and a margin; run it from cron, e.g. daily). Prints a line per
    transaction, then the totals. Receipts are never pruned."""
    from registry.inclusion.service import retention
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import retrying

    engine = engine_or_exit(settings_or_exit())
    keys = counters = 0
    try:
        while True:
            pruned = retrying(engine, lambda session: retention.prune(session, limit=batch))
            keys += pruned.keys
            counters += pruned.counters
            if pruned.keys < batch and pruned.counters < batch:
                break
            typer.echo(f"... {keys} fingerprints, {counters} counters so far")
    finally:
        engine.dispose()
    typer.echo(f"pruned {keys} activity fingerprints and {counters} daily-cap counters")
