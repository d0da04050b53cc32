"""The ``tanhui`` command. Operators script these names and flags: keep them stable."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy import Engine

import market.cli
import market.rewards.cli
import mrv.cli
import registry.cli
import registry.inclusion.cli
import tanhui.translog.cli
import wallet.cli
from tanhui.models import OrgKind, Role
from tanhui.settings import Settings, SettingsError, load_settings, use_settings, with_local_secrets

app = typer.Typer(
    help="Tanhui (碳惠): carbon-sink trading and carbon inclusion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for machine clients.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
for name, sub in (
    ("wallet", wallet.cli.app),
    ("registry", registry.cli.app),
    ("market", market.cli.app),
    ("mrv", mrv.cli.app),
):
    if sub.registered_commands or sub.registered_groups:
        app.add_typer(sub, name=name)
app.add_typer(registry.cli.certificate_app, name="certificate")
app.add_typer(registry.inclusion.cli.partners_app, name="partners")
app.add_typer(registry.inclusion.cli.residents_app, name="residents")
app.add_typer(registry.inclusion.cli.points_app, name="points")
app.add_typer(market.rewards.cli.app, name="rewards")
app.add_typer(tanhui.translog.cli.app, name="log")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"tanhui: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    """Settings with local secrets filled in; a bad setting ends the command with one line."""
    try:
        settings = with_local_secrets(load_settings(**overrides))
    except SettingsError as error:
        fail(str(error))
    use_settings(settings)
    return settings


def engine_or_exit(settings: Settings) -> Engine:
    from tanhui.db import create_engine

    return create_engine(settings)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply the migrations to TANHUI_DATABASE_URL."""
    from tanhui.migrate import upgrade

    settings = settings_or_exit()
    engine = engine_or_exit(settings)
    upgrade(engine, revision)
    typer.echo(f"database at {revision}")


@db_app.command("prune-limits")
def db_prune_limits() -> None:
    """Delete rate-limit counters whose window is over (sign-in, codes, card links)."""
    from tanhui import throttle
    from tanhui.db import unit_of_work

    settings = settings_or_exit()
    with unit_of_work(engine_or_exit(settings)) as session:
        pruned = throttle.prune(session)
    typer.echo(f"{pruned} rate-limit counters deleted")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the web application and API (TANHUI_ENV=production refuses placeholder secrets)."""
    import uvicorn

    settings_or_exit()
    uvicorn.run(
        "tanhui.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    fresh: Annotated[bool, typer.Option("--fresh", help="start from an empty database")] = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="seed and print the logins, then exit")
    ] = False,
) -> None:
    """Seed a Huzhou demo on SQLite (no configuration needed) and serve it."""
    import uvicorn

    from tanhui import demo as demo_seed

    state_dir = Path(os.environ.get("TANHUI_STATE_DIR", ".tanhui"))
    database = state_dir / "demo.db"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    url = os.environ.get("TANHUI_DATABASE_URL") or f"sqlite:///{database}"
    os.environ["TANHUI_DATABASE_URL"] = url
    os.environ.setdefault("TANHUI_BASE_URL", f"http://{host}:{port}")
    settings = settings_or_exit()
    # Workers started by uvicorn read the same generated secrets from the state folder.
    assert settings.secret_key is not None and settings.data_key is not None
    os.environ["TANHUI_SECRET_KEY"] = settings.secret_key.get_secret_value()
    os.environ["TANHUI_DATA_KEY"] = settings.data_key.get_secret_value()
    logins = demo_seed.prepare(settings, progress=lambda text: typer.echo(text, err=True))
    typer.echo(f"Tanhui demo: {settings.base_url}  (database {url})")
    for line in demo_seed.login_lines(logins):
        typer.echo(line)
    if no_serve:
        return
    uvicorn.run("tanhui.app:create_app", factory=True, host=host, port=port, log_level="info")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="sign-in email")],
    password: Annotated[str, typer.Option(help="at least 10 characters")],
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="a platform administrator")
    ] = False,
    org: Annotated[str | None, typer.Option("--org", help="organisation name")] = None,
    org_kind: Annotated[
        OrgKind | None, typer.Option("--org-kind", help="organisation kind")
    ] = None,
    role: Annotated[Role | None, typer.Option(help="role in the organisation")] = None,
) -> None:
    """Create a user: a platform admin, or a member of an organisation (created if new)."""
    from tanhui import identity
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    if platform_admin == bool(org):
        fail("give either --platform-admin or --org NAME --org-kind KIND --role ROLE")
    if org and (org_kind is None or role is None):
        fail("--org needs --org-kind and --role")
    settings = settings_or_exit()
    try:
        with unit_of_work(engine_or_exit(settings)) as session:
            organisation = (
                identity.get_or_create_organisation(session, name=org, kind=org_kind)
                if org and org_kind
                else None
            )
            user = identity.create_user(
                session,
                email=email,
                password=password,
                organisation=organisation,
                role=role,
                is_platform_admin=platform_admin,
            )
            user_id = user.id
    except DomainError as error:
        fail(str(error))
    typer.echo(str(user_id))


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option(help="the user the token acts for")],
    name: Annotated[str, typer.Option(help="a label to recognise it by")] = "cli",
) -> None:
    """Create an API token; prints the token alone on stdout (it is not shown again)."""
    from tanhui import identity
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    settings = settings_or_exit()
    try:
        with unit_of_work(engine_or_exit(settings)) as session:
            user = identity.find_user_by_email(session, email)
            if user is None:
                fail(f"no user with email {email}")
            created = identity.create_api_token(session, user=user, name=name, actor="system:cli")
    except DomainError as error:
        fail(str(error))
    typer.echo(created.token)


@audit_app.command("verify")
def audit_verify(
    checkpoint: tanhui.translog.cli.CheckpointOption = None,
    keys: tanhui.translog.cli.KeysOption = None,
) -> None:
    """Recompute the audit chain (checkpoint signatures with pinned keys only) and hold it and
    the transparency log against a CHECKPOINT kept elsewhere; name the first differing entry."""
    from tanhui import audit
    from tanhui.db import unit_of_work
    from tanhui.translog.cli import load_checkpoint, load_pinned
    from tanhui.translog.verify import log_faults

    settings = settings_or_exit()
    pinned = load_pinned(keys)
    held = load_checkpoint(checkpoint, pinned) if checkpoint is not None else None
    with unit_of_work(engine_or_exit(settings)) as session:
        faults = log_faults(session, held)
        report = audit.verify_chain(session, trusted=pinned)
    if faults:
        more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
        fail(f"audit log differs from the transparency log: {faults[0]}{more}", code=1)
    if not report.ok:
        fail(f"audit chain broken at record {report.first_broken_seq}: {report.reason}", code=1)
    against = f"; consistent with checkpoint of {held.size} entries" if held else ""
    typer.echo(
        f"audit chain ok: {report.records} records, {report.checkpoints} signed checkpoints"
        f"{against}"
    )


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the current chain head with the platform key (run it from cron)."""
    from tanhui import audit
    from tanhui.db import unit_of_work

    settings = settings_or_exit()
    with unit_of_work(engine_or_exit(settings)) as session:
        signed = audit.checkpoint(session)
        message = f"signed record {signed.seq}" if signed else "nothing to sign"
    typer.echo(message)


def main() -> None:
    try:
        app()
    except SettingsError as error:
        typer.echo(f"tanhui: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
