"""MRV runs started from the cooperative portal: a background thread, progress on disk.

No registry service stores MRV jobs, so a job lives in the state folder, keyed by a random id:
``<TANHUI_STATE_DIR>/mrv-jobs/<job id>/`` holds ``status.json`` (rewritten atomically as the
run advances), the uploaded rasters (deleted when the run ends) and ``report.json`` (MRV's
canonical JSON, the bytes the registry stores and hashes when the report is submitted). Any web
process that sees the same state folder can show the progress; the request that started the job
returns at once. At most :data:`MAX_RUNNING` runs estimate at a time; the others wait in line.

The job knows its organisation and project; pages check the caller's organisation against it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mrv.report import Report
from tanhui.db import utcnow
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.settings import get_settings

log = logging.getLogger("tanhui.frontend.mrv")

JOBS_FOLDER = "mrv-jobs"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_RUNNING = 1  # estimates are CPU-bound; one at a time leaves the web tier responsive
PROGRESS_EVERY_S = 0.25  # status.json is rewritten at most this often
STALLED_AFTER_S = 15 * 60  # a running job silent this long died with its process
KEEP_JOBS_S = 7 * 24 * 3600  # finished jobs are removed a week later
MAX_LISTED = 10  # runs listed on a project's page
_running = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass
class JobStatus:
    id: str
    organisation_id: str
    project_id: str
    methodology: str
    period_start: str
    period_end: str
    layers: list[str]
    state: str = "queued"  # queued, running, done, failed, submitted
    done: int = 0
    total: int = 0
    error: str = ""  # an MRV domain error's message (English source, translated when shown)
    error_params: dict[str, Any] = field(default_factory=dict)
    period_id: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def stalled(self) -> bool:
        if self.state not in {"queued", "running"} or not self.updated_at:
            return False
        age = (utcnow() - datetime.fromisoformat(self.updated_at)).total_seconds()
        return age > STALLED_AFTER_S

    @property
    def started_at(self) -> datetime | None:
        return datetime.fromisoformat(self.created_at) if self.created_at else None

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


def jobs_dir() -> Path:
    return get_settings().state_dir / JOBS_FOLDER


def job_dir(job_id: str) -> Path:
    if not JOB_ID.match(job_id):
        raise ValueError("not a job id")
    return jobs_dir() / job_id


def _write_status(status: JobStatus) -> None:
    status.updated_at = utcnow().isoformat(timespec="seconds")
    folder = job_dir(status.id)
    temporary = folder / f"status.{threading.get_ident()}.tmp"
    temporary.write_text(json.dumps(asdict(status), ensure_ascii=False), "utf-8")
    os.replace(temporary, folder / "status.json")


def read_status(job_id: str) -> JobStatus | None:
    try:
        raw = json.loads((job_dir(job_id) / "status.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return JobStatus(**raw)


def read_report(job_id: str) -> str | None:
    try:
        return (job_dir(job_id) / "report.json").read_text("utf-8")
    except (OSError, ValueError):
        return None


def new_job(
    *,
    organisation_id: str,
    project_id: str,
    methodology: str,
    period_start: date,
    period_end: date,
) -> JobStatus:
    """Create the job's folder (``inputs/`` receives the uploads) and its first status."""
    _clean_old_jobs()
    job_id = secrets.token_hex(16)
    (job_dir(job_id) / "inputs").mkdir(parents=True)
    status = JobStatus(
        id=job_id,
        organisation_id=organisation_id,
        project_id=project_id,
        methodology=methodology,
        period_start=period_start.isoformat(),
        period_end=period_end.isoformat(),
        layers=[],
        created_at=utcnow().isoformat(timespec="seconds"),
    )
    _write_status(status)
    return status


def input_path(job_id: str, name: str) -> Path:
    return job_dir(job_id) / "inputs" / name


def start(
    status: JobStatus,
    *,
    parcels: Any,
    rasters: dict[str, str],
    classes: str | None,
) -> None:
    """Run the estimate in a background thread (``parcels``: a GeoDataFrame in WGS84)."""
    status.layers = sorted(rasters)
    _write_status(status)
    params = {
        "monitoring_period": {"start": status.period_start, "end": status.period_end},
        "area": {"crs": "EPSG:4549"},
    }
    thread = threading.Thread(
        target=_run,
        args=(status, parcels, rasters, classes, params),
        name=f"mrv-{status.id[:8]}",
        daemon=True,
    )
    thread.start()


def _run(
    status: JobStatus,
    parcels: Any,
    rasters: dict[str, str],
    classes: str | None,
    params: dict[str, Any],
) -> None:
    from mrv.service import estimate

    with _running:
        status.state = "running"
        _write_status(status)
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            status.done, status.total = done, total
            if now - last >= PROGRESS_EVERY_S or done == total:
                last = now
                _write_status(status)

        try:
            report: Report = estimate(
                parcels,
                rasters,
                status.methodology,
                params,
                progress=progress,
                id_column="id",
                classes=classes,
            )
            (job_dir(status.id) / "report.json").write_text(report.to_json(), "utf-8")
            status.state = "done"
        except DomainError as error:
            status.state = "failed"
            status.error = error.message
            status.error_params = {k: str(v) for k, v in error.params.items()}
        except Exception:
            log.exception("MRV job %s failed", status.id)
            status.state = "failed"
            status.error = N_("The estimate stopped on an unexpected error; nothing was stored.")
        finally:
            shutil.rmtree(job_dir(status.id) / "inputs", ignore_errors=True)
        _write_status(status)


def jobs_of(organisation_id: str, project_id: str, limit: int = MAX_LISTED) -> list[JobStatus]:
    """The project's recent runs, newest first (what the state folder still keeps)."""
    folder = jobs_dir()
    if not folder.exists():
        return []
    found = []
    for entry in folder.iterdir():
        status = read_status(entry.name) if JOB_ID.match(entry.name) else None
        if status and status.organisation_id == organisation_id and status.project_id == project_id:
            found.append(status)
    return sorted(found, key=lambda item: item.created_at, reverse=True)[:limit]


def mark_submitted(job_id: str, period_id: str) -> None:
    status = read_status(job_id)
    if status is None:
        return
    status.state = "submitted"
    status.period_id = period_id
    _write_status(status)


def _clean_old_jobs() -> None:
    folder = jobs_dir()
    if not folder.exists():
        return
    cutoff = time.time() - KEEP_JOBS_S
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue
