"""`tanhui log ...`: run the sequencer, print the checkpoint, witness the log, prove it grew."""

from __future__ import annotations

from typing import Annotated

import typer

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
