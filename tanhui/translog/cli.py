"""`tanhui log ...`: run the sequencer, print the checkpoint, witness the log, prove it grew."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tanhui.translog import note

CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        help="a signed log checkpoint kept outside the database (GET /api/v1/public/log/"
        "checkpoint, saved earlier): every fact it covers must still be as logged"
    ),
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        help="pinned platform keys (GET /api/v1/public/log/key or /public/keys, saved); "
        "default: the local platform key file"
    ),
]

app = typer.Typer(
    help="The transparency log of public facts: sequencer, checkpoints, witnessing.",
    no_args_is_help=True,
)


@app.command("sequence")
def sequence(
    once: Annotated[bool, typer.Option(help="one step, then exit (cron)")] = False,
    interval: Annotated[float, typer.Option(min=0.01, help="seconds between steps")] = 0.25,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="entries per step")] = 1000,
) -> None:
    """Integrate pending entries into the tree and sign checkpoints, every INTERVAL seconds
    (or at once while batches are full). Several may run: one integrates at a time."""
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.translog import service as log

    engine = engine_or_exit(settings_or_exit())
    try:
        for signed in log.run_sequencer(engine, interval_s=interval, limit=batch, once=once):
            if once:
                typer.echo(f"tree size {signed.size}" if signed else "nothing to sign")
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@app.command("checkpoint")
def checkpoint() -> None:
    """Print the newest signed checkpoint (the note a witness or a user keeps)."""
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.translog import service as log

    engine = engine_or_exit(settings_or_exit())
    try:
        with unit_of_work(engine) as session:
            signed = log.current_checkpoint(session)
            note = signed.note if signed else None
    finally:
        engine.dispose()
    if note is None:
        fail("the log is empty", code=1)
    typer.echo(note, nl=False)


def load_pinned(keys: Path | None) -> dict[str, bytes]:
    """Pinned platform keys: from ``keys`` (a published key file), else the local key file."""
    from tanhui.cli import fail
    from tanhui.crypto import key_id_for
    from tanhui.translog.verify import local_platform_key, pinned_keys

    if keys is not None:
        try:
            found = pinned_keys(keys.read_bytes())
        except (OSError, ValueError, KeyError) as error:
            fail(f"cannot read the keys: {error}")
        if not found:
            fail("the key file holds no platform key")
        return found
    local = local_platform_key()
    if local is None:
        fail("no pinned key: pass --keys (GET /api/v1/public/log/key, saved)")
    return {key_id_for(local): local}


def load_checkpoint(path: Path, pinned: dict[str, bytes]) -> note.Checkpoint:
    from tanhui.cli import fail
    from tanhui.translog.verify import open_pinned

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read the checkpoint: {error}")
    try:
        return open_pinned(text, list(pinned.values()))
    except note.NoteError as error:
        fail(f"the checkpoint is not signed by a pinned key: {error}", code=1)


@app.command("witness")
def witness(
    url: Annotated[str, typer.Option(help="the platform's base URL")],
    state: Annotated[Path, typer.Option(help="where the witness keeps its checkpoint and key")],
    keys: KeysOption = None,
    name: Annotated[str, typer.Option(help="the witness's key name")] = "witness.local/tanhui",
) -> None:
    """Fetch the log's checkpoint, prove it extends the one kept in STATE, keep it and print it
    with this witness's cosignature (C2SP tlog-cosignature). Exit 1 if the log misbehaved."""
    from tanhui.cli import fail
    from tanhui.translog.witness import WitnessError, http_fetch
    from tanhui.translog.witness import witness as run

    pinned = load_pinned(keys)
    try:
        cosigned = run(http_fetch(url), state, list(pinned.values()), name)
    except WitnessError as error:
        fail(str(error), code=1)
    typer.echo(cosigned, nl=False)


@app.command("verify")
def verify(
    url: Annotated[str, typer.Option(help="the platform's base URL")],
    checkpoint: Annotated[Path, typer.Option(help="an old signed checkpoint you kept")],
    keys: KeysOption = None,
) -> None:
    """Prove that the current log extends CHECKPOINT (nothing it covered was rewritten)."""
    from tanhui.cli import fail
    from tanhui.translog.witness import WitnessError, extends, http_fetch

    pinned = load_pinned(keys)
    try:
        old = checkpoint.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read the checkpoint: {error}")
    try:
        new = extends(http_fetch(url), old, list(pinned.values()))
    except WitnessError as error:
        fail(str(error), code=1)
    typer.echo(f"the log of {new.size} entries extends the checkpoint")
