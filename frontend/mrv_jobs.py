"""MRV runs started from the cooperative portal: estimated in a background thread, recorded in
the database.

The run itself (state, progress, error, report and its SHA-256) is a row written through
:mod:`registry.service.mrv_runs` in short transactions of its own, so every web process on every
machine shows the same runs, and the request that starts a run returns at once. Progress is
written at most every :data:`PROGRESS_EVERY_S`; a heartbeat every :data:`HEARTBEAT_S` while the
run waits for the estimate slot or estimates, so a run silent for the registry's stall limit died
with its process, whichever process looks.

Only the uploaded rasters stay on disk while the run lasts, under
``<TANHUI_STATE_DIR>/mrv-jobs/<run id>/inputs/``, deleted when the run ends (folders a dead
process left behind go a week later). The process that received the upload estimates it, so web
processes need no shared folder; with ``TANHUI_MRV_SCHEDULER`` set, the Dask workers open the
rasters by path, so they must see the same state folder (a shared mount, or object storage
later). At most :data:`MAX_RUNNING` runs estimate at a time per process; the others wait in line.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from registry.models import MrvRun
from registry.service import mrv_runs
from tanhui.db import new_id, retrying
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.settings import get_settings

log = logging.getLogger("tanhui.frontend.mrv")

JOBS_FOLDER = "mrv-jobs"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # a run's id in URLs and folder names: its UUID's hex
MAX_RUNNING = 1  # estimates are CPU-bound; one at a time leaves the web tier responsive
PROGRESS_EVERY_S = 0.25  # progress is written at most this often (four short writes a second)
HEARTBEAT_S = 60.0  # a queued or running run says it is alive at least this often
KEEP_FOLDERS_S = 7 * 24 * 3600  # input folders a dead process left behind go a week later
UNEXPECTED = N_("The estimate stopped on an unexpected error; nothing was stored.")
DEFAULT_BUDGET_S = 3600.0


class OverBudget(DomainError):
    """The run took longer than its time budget (``TANHUI_MRV_TIME_BUDGET_S``)."""

    code = mrv_runs.OVER_BUDGET
    title = N_("The estimate took too long")


class Cancelled(DomainError):
    """The run was cancelled (or removed) while it estimated."""

    code = mrv_runs.CANCELLED
    title = N_("The run was cancelled.")


_running = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass(frozen=True)
class JobStatus:
    """What the pages show of a run (read from its row; the report is read separately)."""

    id: str  # hex of the run's UUID
    organisation_id: str
    project_id: str
    methodology: str
    period_start: str
    period_end: str
    layers: list[str]
    state: str  # queued, running, done, failed, submitted
    done: int = 0
    total: int = 0
    error: str = ""  # an MRV domain error's message (English source, translated when shown)
    error_params: dict[str, Any] = field(default_factory=dict)
    period_id: str = ""
    created_at: str = ""
    updated_at: str = ""
    stalled: bool = False

    @classmethod
    def of(cls, run: MrvRun) -> JobStatus:
        return cls(
            id=run.id.hex,
            organisation_id=str(run.organisation_id),
            project_id=str(run.project_id),
            methodology=run.methodology,
            period_start=_iso(run.period_start),
            period_end=_iso(run.period_end),
            layers=mrv_runs.layer_names(run),
            state=str(run.state),
            done=run.done,
            total=run.total,
            error=run.error_message or "",
            error_params=mrv_runs.error_params(run),
            period_id=str(run.period_id) if run.period_id else "",
            created_at=run.created_at.isoformat(timespec="seconds"),
            updated_at=run.updated_at.isoformat(timespec="seconds"),
            stalled=mrv_runs.is_stalled(run),
        )

    @property
    def started_at(self) -> datetime | None:
        return datetime.fromisoformat(self.created_at) if self.created_at else None

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


def _iso(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def run_id_of(job_id: str) -> uuid.UUID | None:
    """The run's UUID from its id in a URL, or None when it is not one."""
    return uuid.UUID(hex=job_id) if JOB_ID.match(job_id) else None


def jobs_dir() -> Path:
    return get_settings().state_dir / JOBS_FOLDER


def job_dir(job_id: str) -> Path:
    if not JOB_ID.match(job_id):
        raise ValueError("not a job id")
    return jobs_dir() / job_id


def input_path(run_id: uuid.UUID, name: str) -> Path:
    return job_dir(run_id.hex) / "inputs" / name


def prepare_inputs() -> uuid.UUID:
    """A new run's id and its empty ``inputs/`` folder (the run's row is created afterwards)."""
    run_id = new_id()
    (job_dir(run_id.hex) / "inputs").mkdir(parents=True)
    return run_id


def discard_inputs(run_id: uuid.UUID) -> None:
    shutil.rmtree(job_dir(run_id.hex), ignore_errors=True)


def start(
    engine: Engine,
    run: MrvRun,
    *,
    parcels: Any,
    rasters: dict[str, str],
    classes: str | None,
    scheduler: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
) -> None:
    """Estimate the committed, queued ``run`` in a background thread.

    ``parcels``: a GeoDataFrame in WGS84; ``scheduler``: a Dask scheduler address, or None to
    estimate in this process; ``budget_s``: the run fails when it estimates longer than this.
    """
    params = mrv_runs.run_params(run)
    thread = threading.Thread(
        target=_run,
        args=(
            engine,
            run.id,
            run.methodology,
            parcels,
            rasters,
            classes,
            params,
            scheduler,
            budget_s,
        ),
        name=f"mrv-{run.id.hex[:8]}",
        daemon=True,
    )
    thread.start()


def _write(engine: Engine, run_id: uuid.UUID, work: Callable[[Session], bool]) -> bool | None:
    """One short transaction of the run's; None when the database could not be written."""
    try:
        return retrying(engine, work)
    except Exception:
        log.exception("MRV run %s: its state could not be recorded", run_id.hex)
        return None


def _run(
    engine: Engine,
    run_id: uuid.UUID,
    methodology: str,
    parcels: Any,
    rasters: dict[str, str],
    classes: str | None,
    params: dict[str, Any],
    scheduler: str | None,
    budget_s: float = DEFAULT_BUDGET_S,
) -> None:
    from mrv.service import estimate

    try:
        _clean_old(engine)
        while not _running.acquire(timeout=HEARTBEAT_S):
            if _write(engine, run_id, lambda s: mrv_runs.record_progress(s, run_id)) is False:
                return  # removed or finished elsewhere while it waited
        try:
            stop = threading.Event()
            beating = threading.Thread(
                target=_heartbeat, args=(engine, run_id, stop), name=f"mrv-beat-{run_id.hex[:8]}"
            )
            beating.start()
            try:
                _estimate(
                    engine,
                    run_id,
                    methodology,
                    parcels,
                    rasters,
                    classes,
                    params,
                    scheduler,
                    estimate,
                    budget_s,
                )
            finally:
                stop.set()
                beating.join()
        finally:
            _running.release()
    finally:
        discard_inputs(run_id)


def _heartbeat(engine: Engine, run_id: uuid.UUID, stop: threading.Event) -> None:
    """While the estimate runs, say the run is alive even when no chunk finishes for a while
    (reading and reprojecting many parcels, long tasks on a Dask cluster)."""
    while not stop.wait(HEARTBEAT_S):
        if _write(engine, run_id, lambda s: mrv_runs.record_progress(s, run_id)) is False:
            return


def _estimate(
    engine: Engine,
    run_id: uuid.UUID,
    methodology: str,
    parcels: Any,
    rasters: dict[str, str],
    classes: str | None,
    params: dict[str, Any],
    scheduler: str | None,
    estimate: Callable[..., Any],
    budget_s: float = DEFAULT_BUDGET_S,
) -> None:
    if _write(engine, run_id, lambda s: mrv_runs.mark_running(s, run_id)) is False:
        return
    last = 0.0
    deadline = time.monotonic() + budget_s

    def progress(done: int, total: int) -> None:
        """Record progress; stop the estimate past its budget or once the run is cancelled."""
        nonlocal last
        now = time.monotonic()
        if now > deadline:
            raise OverBudget(
                N_("The estimate took longer than its budget of {seconds} s; nothing was stored."),
                seconds=int(budget_s),
            )
        if now - last >= PROGRESS_EVERY_S or done == total:
            last = now
            written = _write(
                engine, run_id, lambda s: mrv_runs.record_progress(s, run_id, done, total)
            )
            if written is False:
                raise Cancelled()

    try:
        report = estimate(
            parcels,
            rasters,
            methodology,
            params,
            progress=progress,
            id_column="id",
            classes=classes,
            scheduler=scheduler,
        )
        text = report.to_json()
    except DomainError as error:
        failure = error
        shown = _public_params(failure.params, str(job_dir(run_id.hex) / "inputs"))
        _write(
            engine,
            run_id,
            lambda s: mrv_runs.fail(
                s, run_id, code=failure.code, message=failure.message, params=shown
            ),
        )
        return
    except Exception:
        log.exception("MRV run %s failed", run_id)
        _write(engine, run_id, lambda s: _unexpected(s, run_id))
        return
    if _write(engine, run_id, lambda s: mrv_runs.finish(s, run_id, text)) is None:
        _write(engine, run_id, lambda s: _unexpected(s, run_id))


def _public_params(params: dict[str, Any], folder: str) -> dict[str, Any]:
    """An MRV error's params as a page may show them: the server's folder of the run's inputs
    removed from names and reasons, so a message names ``index.tif``, not a path."""
    return {
        key: str(value).replace(folder + "/", "").replace(folder, "")
        for key, value in params.items()
    }


def _unexpected(session: Session, run_id: uuid.UUID) -> bool:
    return mrv_runs.fail(session, run_id, code="mrv/unexpected", message=UNEXPECTED)


def _clean_old(engine: Engine) -> None:
    """Remove runs unchanged for a week, and input folders dead processes left behind."""
    try:
        retrying(engine, mrv_runs.remove_old_runs)
    except Exception:
        log.exception("old MRV runs could not be removed")
    folder = jobs_dir()
    if not folder.exists():
        return
    cutoff = time.time() - KEEP_FOLDERS_S
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue
