"""TANHUI_MRV_SCHEDULER: a validated setting, the default of ``tanhui mrv estimate --scheduler``
(the flag overrides it). A Dask cluster runs in this process (threads), as in the Dask test of
test_report_and_cli; a scheduler plugin records the tasks it ran."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shapely import box
from typer.testing import CliRunner

from mrv.cli import app
from tanhui.settings import SettingsError, load_settings
from tests.mrv.helpers import frame, write_raster

WEST, NORTH = 500_000.0, 3_400_000.0


class TaskLog:
    """What a scheduler plugin saw: the keys of the tasks that finished."""

    def __init__(self) -> None:
        self.finished: list[str] = []

    def ran(self, prefix: str = "run_task") -> int:
        return sum(1 for key in self.finished if prefix in key)


def start_cluster(distributed: Any) -> Any:
    """An in-process Dask cluster (two worker threads) whose scheduler logs finished tasks."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    log = TaskLog()

    class Plugin(SchedulerPlugin):  # type: ignore[misc]
        name = "tanhui-task-log"

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
            if finish == "memory":
                log.finished.append(str(key))

    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    local.scheduler.add_plugin(Plugin())
    local.task_log = log
    return local


@pytest.fixture
def cluster() -> Iterator[tuple[str, TaskLog]]:
    distributed = pytest.importorskip("distributed")
    with start_cluster(distributed) as local:
        yield local.scheduler_address, local.task_log


def _inputs(tmp_path: Path) -> list[str]:
    parcels = tmp_path / "parcels.geojson"
    shapes = [
        box(WEST + 100, NORTH - 900, WEST + 600, NORTH - 400),
        box(WEST + 1000, NORTH - 1500, WEST + 1400, NORTH - 1100),
    ]
    frame(shapes).to_crs("EPSG:4326").to_file(parcels)
    index = np.full((200, 200), 0.8, dtype="float32")
    raster = write_raster(tmp_path / "index.tif", index, origin=(WEST, NORTH))
    return [
        "estimate",
        "--parcels",
        str(parcels),
        "--raster",
        f"index={raster}",
        "--methodology",
        "bamboo-rate",
        "--out",
        str(tmp_path / "report.json"),
    ]


@pytest.mark.parametrize(
    "value",
    ["http://10.0.0.5:8786", "tcp://:8786", "tcp://10.0.0.5:99999", "tcp://host:8786/x", "a b"],
)
def test_a_malformed_scheduler_setting_is_one_line_naming_it(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANHUI_MRV_SCHEDULER", value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("invalid setting TANHUI_MRV_SCHEDULER:") and "\n" not in message
    assert "tcp://10.0.0.5:8786" in message  # an example of the right form


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        (" scheduler:8786 ", "scheduler:8786"),
        ("tls://[::1]:8786", "tls://[::1]:8786"),
    ],
)
def test_a_scheduler_setting_is_read(
    value: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANHUI_MRV_SCHEDULER", value)
    assert load_settings().mrv_scheduler == expected


def test_the_cli_uses_the_setting_and_the_flag_overrides_it(
    cluster: tuple[str, TaskLog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, log = cluster
    arguments = _inputs(tmp_path)

    monkeypatch.setenv("TANHUI_MRV_SCHEDULER", address)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    ran = log.ran()
    assert ran, f"no task ran on the scheduler: {log.finished}"
    remote = (tmp_path / "report.json").read_bytes()

    # the flag wins over the setting, even over a malformed one
    monkeypatch.setenv("TANHUI_MRV_SCHEDULER", "http://nowhere")
    result = CliRunner().invoke(app, [*arguments, "--scheduler", address])
    assert result.exit_code == 0, result.output
    assert log.ran() > ran

    # a malformed setting stops the command with one line naming it; nothing is written
    (tmp_path / "report.json").unlink()
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert "invalid setting TANHUI_MRV_SCHEDULER" in result.output
    assert not (tmp_path / "report.json").exists()
    result = CliRunner().invoke(app, [*arguments, "--scheduler", "ftp://x"])
    assert result.exit_code == 2 and "--scheduler 'ftp://x'" in result.output

    # without the setting the estimate runs here and gives the same bytes
    monkeypatch.delenv("TANHUI_MRV_SCHEDULER")
    finished = len(log.finished)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert len(log.finished) == finished
    assert (tmp_path / "report.json").read_bytes() == remote
