"""The streaming zonal pass: parcels x raster windows -> per-parcel sums.

The raster is cut into fixed chunks (``CHUNK_ROWS`` x ``CHUNK_COLS`` cells). Each parcel's pixel
box is cut at the chunk lines into pieces; each chunk reads only the window its pieces cover,
computes exact coverage fractions for them (:mod:`mrv.coverage`), gathers the covered cells'
values and hands them to the methodology's kernel, which returns per-parcel sums. Memory is
bounded by the chunk size whatever the raster's size, and chunks are independent, so the same
plan runs in this process or on Dask workers. Results are combined in chunk order, so the sums
are bit-for-bit the same however the chunks were scheduled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from mrv.coverage import EdgePieces, coverage_in_boxes, edge_pieces
from mrv.io import Grid, Layer, LayerReader, layer_reader
from mrv.params import QaRule

CHUNK_ROWS = 1024
CHUNK_COLS = 1024
# Chunks per task when running on Dask: fewer, larger tasks keep the scheduler overhead low.
CHUNKS_PER_TASK = 8
CHUNKS_PER_PROCESS_TASK = 4  # chunks a worker process takes at a time

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
Progress = Callable[[int, int], None]


@dataclass
class CellData:
    """The covered cells of one chunk, as flat arrays (one element per (parcel, cell))."""

    parcel: IntArray  # local parcel index, 0..count-1, ascending
    count: int  # number of parcels in the chunk
    weight: FloatArray  # coverage fraction x the cell's ground area, m2
    values: dict[str, FloatArray]  # scaled values, NaN where nodata
    invalid: dict[str, BoolArray]  # nodata (or, for QA layers, masked by a rule)
    raw: dict[str, NDArray[Any]]  # raw numbers of categorical layers

    @cached_property
    def _runs(self) -> tuple[IntArray, BoolArray]:
        """Where each parcel's cells start (they are contiguous), for the parcels with any."""
        starts = np.searchsorted(self.parcel, np.arange(self.count + 1))
        present = starts[1:] > starts[:-1]
        return starts[:-1][present], present

    def _reduce(self, ufunc: np.ufunc, values: FloatArray, empty: float) -> FloatArray:
        """``ufunc`` over each parcel's finite values (``empty`` where it has none): one
        ``reduceat`` over the contiguous runs, not an unbuffered ``ufunc.at``."""
        out = np.full(self.count, empty)
        if values.size == 0:
            return out
        starts, present = self._runs
        finite_or_empty = np.where(np.isfinite(values), values, empty)
        out[present] = ufunc.reduceat(finite_or_empty, starts)
        return out

    def sum(self, weights: FloatArray) -> FloatArray:
        return np.bincount(self.parcel, weights=weights, minlength=self.count).astype(np.float64)

    def sum_by_class(self, classes: IntArray, n_classes: int, weights: FloatArray) -> FloatArray:
        keys = self.parcel * n_classes + classes
        flat = np.bincount(keys, weights=weights, minlength=self.count * n_classes)
        return flat.reshape(self.count, n_classes).astype(np.float64)

    def minimum(self, values: FloatArray) -> FloatArray:
        return self._reduce(np.minimum, values, np.inf)

    def maximum(self, values: FloatArray) -> FloatArray:
        return self._reduce(np.maximum, values, -np.inf)


class Kernel(Protocol):
    """What a methodology computes per cell; must be picklable (it travels to Dask workers)."""

    @property
    def continuous(self) -> tuple[str, ...]: ...

    @property
    def categorical(self) -> tuple[str, ...]: ...

    @property
    def qa(self) -> tuple[str, ...]: ...

    def accumulate(self, cells: CellData) -> dict[str, FloatArray]:
        """Per-parcel sums for this chunk; names starting ``min_``/``max_`` combine by min/max."""
        ...


@dataclass(frozen=True)
class Plan:
    """Every (parcel, chunk) piece, sorted by chunk, and the chunk list."""

    pieces: EdgePieces
    parcel: IntArray
    r0: IntArray
    r1: IntArray
    c0: IntArray
    c1: IntArray
    chunk_start: IntArray  # index into the piece arrays where each non-empty chunk starts
    chunk_rows: IntArray  # chunk row of each non-empty chunk

    @property
    def chunk_count(self) -> int:
        return int(self.chunk_start.size - 1)


def plan(
    geometries: NDArray[np.object_],
    grid: Grid,
    *,
    chunk_rows: int = CHUNK_ROWS,
    chunk_cols: int = CHUNK_COLS,
) -> Plan:
    """Cut the parcels (in the raster's CRS) into per-chunk pieces."""
    import shapely

    inverse = grid.inverse
    bounds = shapely.bounds(geometries)  # minx, miny, maxx, maxy
    corners_x = bounds[:, [0, 2, 0, 2]]
    corners_y = bounds[:, [1, 1, 3, 3]]
    a, b, c, d, e, f = inverse
    u = a * corners_x + b * corners_y + c
    v = d * corners_x + e * corners_y + f
    r0 = np.clip(np.floor(v.min(axis=1)), 0, grid.height).astype(np.int64)
    r1 = np.clip(np.ceil(v.max(axis=1)), 0, grid.height).astype(np.int64)
    c0 = np.clip(np.floor(u.min(axis=1)), 0, grid.width).astype(np.int64)
    c1 = np.clip(np.ceil(u.max(axis=1)), 0, grid.width).astype(np.int64)
    present = (r1 > r0) & (c1 > c0) & ~shapely.is_empty(geometries)
    index = np.flatnonzero(present)
    pieces = edge_pieces(geometries, inverse, grid.height, grid.width)
    # Pieces: the chunk range of each parcel box.
    cr0 = r0[index] // chunk_rows
    cr1 = (r1[index] - 1) // chunk_rows
    cc0 = c0[index] // chunk_cols
    cc1 = (c1[index] - 1) // chunk_cols
    n_rows = cr1 - cr0 + 1
    n_cols = cc1 - cc0 + 1
    per_parcel = n_rows * n_cols
    parcel = np.repeat(index, per_parcel)
    local = np.arange(int(per_parcel.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(per_parcel) - per_parcel, per_parcel
    )
    chunk_r = np.repeat(cr0, per_parcel) + local // np.repeat(n_cols, per_parcel)
    chunk_c = np.repeat(cc0, per_parcel) + local % np.repeat(n_cols, per_parcel)
    box_r0 = np.maximum(r0[parcel], chunk_r * chunk_rows)
    box_r1 = np.minimum(r1[parcel], (chunk_r + 1) * chunk_rows)
    box_c0 = np.maximum(c0[parcel], chunk_c * chunk_cols)
    box_c1 = np.minimum(c1[parcel], (chunk_c + 1) * chunk_cols)
    n_chunk_cols = (grid.width + chunk_cols - 1) // chunk_cols
    chunk_id = chunk_r * n_chunk_cols + chunk_c
    order = np.lexsort((parcel, chunk_id))
    chunk_id = chunk_id[order]
    boundaries = np.flatnonzero(np.diff(chunk_id)) + 1 if chunk_id.size else np.zeros(0, np.int64)
    chunk_start = np.concatenate([[0], boundaries, [chunk_id.size]]).astype(np.int64)
    if chunk_id.size == 0:
        chunk_start = np.zeros(1, dtype=np.int64)
    first = chunk_start[:-1]
    return Plan(
        pieces=pieces,
        parcel=parcel[order],
        r0=box_r0[order],
        r1=box_r1[order],
        c0=box_c0[order],
        c1=box_c1[order],
        chunk_start=chunk_start,
        chunk_rows=(chunk_id[first] // n_chunk_cols).astype(np.int64),
    )


@dataclass
class ChunkResult:
    parcels: IntArray
    sums: dict[str, FloatArray]


@dataclass(frozen=True)
class Task:
    """A run of consecutive chunks, with just the edge pieces their rows need."""

    pieces: EdgePieces
    parcel: IntArray
    r0: IntArray
    r1: IntArray
    c0: IntArray
    c1: IntArray
    chunk_start: IntArray


def tasks(work: Plan, chunks_per_task: int) -> list[Task]:
    """Split the plan into tasks of up to ``chunks_per_task`` chunks (for Dask)."""
    result = []
    for first in range(0, work.chunk_count, chunks_per_task):
        last = min(first + chunks_per_task, work.chunk_count)
        lo, hi = int(work.chunk_start[first]), int(work.chunk_start[last])
        parcels = work.parcel[lo:hi]
        row_lo, row_hi = int(work.r0[lo:hi].min()), int(work.r1[lo:hi].max())
        pieces = work.pieces
        keep = (
            np.isin(pieces.polygon, np.unique(parcels))
            & (pieces.row >= row_lo)
            & (pieces.row < row_hi)
        )
        result.append(
            Task(
                pieces=EdgePieces(
                    polygon=pieces.polygon[keep],
                    row=pieces.row[keep],
                    col=pieces.col[keep],
                    left=pieces.left[keep],
                    right=pieces.right[keep],
                    row_span=pieces.row_span,
                ),
                parcel=parcels,
                r0=work.r0[lo:hi],
                r1=work.r1[lo:hi],
                c0=work.c0[lo:hi],
                c1=work.c1[lo:hi],
                chunk_start=work.chunk_start[first : last + 1] - lo,
            )
        )
    return result


@dataclass(frozen=True)
class Context:
    """Everything a chunk needs besides its pieces (picklable)."""

    grid: Grid
    layers: dict[str, Layer]
    kernel: Kernel
    qa_rules: tuple[QaRule, ...]
    row_areas: FloatArray | None = None  # ground area of a cell in each row (geographic grids)
    cell_area: float = 0.0


def run_task(task: Task, context: Context) -> list[ChunkResult]:
    """Process the chunks of one task (runs on a Dask worker or in this process)."""
    with layer_reader() as reader:
        return [
            _chunk_at(task, index, context, reader) for index in range(task.chunk_start.size - 1)
        ]


def iterate_local(work: Plan, context: Context) -> Iterator[ChunkResult]:
    with layer_reader() as reader:
        for index in range(work.chunk_count):
            yield _chunk_at(work, index, context, reader)


def _chunk_at(work: Plan | Task, index: int, context: Context, reader: LayerReader) -> ChunkResult:
    """Chunk ``index`` of a plan, or of a task (a run of a plan's chunks)."""
    lo, hi = int(work.chunk_start[index]), int(work.chunk_start[index + 1])
    return _chunk(
        work.pieces,
        work.parcel[lo:hi],
        work.r0[lo:hi],
        work.r1[lo:hi],
        work.c0[lo:hi],
        work.c1[lo:hi],
        context,
        reader,
    )


# One run of worker processes at a time per process (another thread's run goes serial).
_POOL_LOCK = threading.Lock()
# In a worker process: the plan and context of its run, installed by _receive when it starts.
_RECEIVED: dict[str, tuple[Plan, Context]] = {}


def _receive(work: Plan, context: Context) -> None:
    """A worker's initializer: forked, it is handed the parent's plan as is (copy-on-write,
    nothing pickled); started by forkserver or spawn, plan and context arrive pickled, once."""
    _RECEIVED["run"] = (work, context)


def _worker_chunks(span: tuple[int, int]) -> list[ChunkResult]:
    from tanhui.errors import DomainError

    work, context = _RECEIVED["run"]
    failure: Exception
    try:
        with layer_reader() as reader:
            return [_chunk_at(work, index, context, reader) for index in range(*span)]
    except DomainError as error:
        failure = error.detached()
    except Exception as error:  # whatever it was, it must cross the process boundary
        failure = RuntimeError(f"MRV worker process failed: {error!r}")
    # Raised outside the handler, so that nothing chained to it (GDAL's own exception
    # classes do not unpickle) has to travel back to the caller.
    raise failure


def local_processes() -> int:
    """The CPUs this process may use (its affinity, not the machine's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def start_method() -> str:
    """How the worker processes start: ``"fork"`` where it is the platform's safe default
    (Linux and other POSIX systems but macOS, Python < 3.12), else ``"forkserver"`` where
    available, else ``"spawn"`` (Windows).

    Forked workers share the plan with this process copy-on-write, the cheapest start. But a
    child forked while another thread of the parent holds a lock can deadlock: from Python 3.12
    ``os.fork`` warns (DeprecationWarning) whenever the process has more than one thread, and
    those include native ones (BLAS, GDAL) that we do not control; 3.14 no longer forks by
    default, and macOS has not since 3.8 (its system libraries are not fork-safe). The other
    methods start from a fresh interpreter and are sent the plan and context (pickled, once per
    worker). Under ``"fork"``, :func:`run` also forks before the caller's threads start
    (``workers_started``)."""
    import multiprocessing
    import sys

    available = multiprocessing.get_all_start_methods()
    if "fork" in available and sys.version_info < (3, 12) and sys.platform != "darwin":
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


def iterate_processes(
    work: Plan,
    context: Context,
    processes: int,
    *,
    workers_started: Callable[[], None] = lambda: None,
) -> Iterator[ChunkResult]:
    """Every chunk's result, in chunk order, computed by ``processes`` worker processes
    (started by :func:`start_method`); ``workers_started()`` is called once they all exist.

    Each chunk is computed exactly as :func:`iterate_local` computes it and the results are
    added in the same order, so the report is the same bytes whatever the number of processes
    and however they were started.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if not _POOL_LOCK.acquire(blocking=False):  # another thread's run has workers: go serial
        workers_started()
        yield from iterate_local(work, context)
        return
    spans = [
        (first, min(first + CHUNKS_PER_PROCESS_TASK, work.chunk_count))
        for first in range(0, work.chunk_count, CHUNKS_PER_PROCESS_TASK)
    ]
    try:
        # An executor, not multiprocessing.Pool: a worker that dies (out of memory, killed)
        # raises BrokenProcessPool here instead of leaving the caller waiting forever.
        with ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context(start_method()),
            initializer=_receive,
            initargs=(work, context),
        ) as pool:
            # The first task submitted forks every worker (before the executor's own threads
            # start: the standard library's order for "fork").
            results = pool.map(_worker_chunks, spans)
            workers_started()
            try:
                for chunk_results in results:
                    yield from chunk_results
            except GeneratorExit:  # the caller stopped (cancelled, over budget): no more chunks
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        _POOL_LOCK.release()


def _chunk(
    pieces: EdgePieces,
    parcel: IntArray,
    r0: IntArray,
    r1: IntArray,
    c0: IntArray,
    c1: IntArray,
    context: Context,
    reader: LayerReader,
) -> ChunkResult:
    cells = coverage_in_boxes(pieces, parcel, r0, r1, c0, c1)
    # A chunk has one box per parcel, in ascending parcel order (see plan): the box index is
    # the parcel's local index, and a parcel without covered cells adds zeros.
    parcels, local = parcel, cells.box
    if cells.fraction.size == 0:
        return ChunkResult(parcels=parcels.astype(np.int64), sums={})
    wr0, wr1 = int(cells.row.min()), int(cells.row.max()) + 1
    wc0, wc1 = int(cells.col.min()), int(cells.col.max()) + 1
    flat = (cells.row - wr0) * (wc1 - wc0) + (cells.col - wc0)
    if context.row_areas is not None:
        weight = cells.fraction * context.row_areas[cells.row]
    else:
        weight = cells.fraction * context.cell_area
    kernel = context.kernel
    values: dict[str, FloatArray] = {}
    invalid: dict[str, BoolArray] = {}
    raw: dict[str, NDArray[Any]] = {}
    for key in kernel.continuous:
        layer = context.layers[key]
        numbers = reader.gather(layer, wr0, wr1, wc0, wc1, flat)
        bad = np.zeros(numbers.size, dtype=bool)
        if layer.nodata is not None:
            bad = numbers == layer.nodata
            if np.isnan(layer.nodata):
                bad = np.isnan(numbers)
        scaled = numbers.astype(np.float64) * layer.scale + layer.offset
        bad |= ~np.isfinite(scaled)
        scaled[bad] = np.nan
        values[key] = scaled
        invalid[key] = bad
    for key in kernel.categorical:
        layer = context.layers[key]
        numbers = reader.gather(layer, wr0, wr1, wc0, wc1, flat)
        raw[key] = numbers
        invalid[key] = (
            numbers == layer.nodata
            if layer.nodata is not None
            else np.zeros(numbers.size, dtype=bool)
        )
    for key in kernel.qa:
        layer = context.layers[key]
        numbers = reader.gather(layer, wr0, wr1, wc0, wc1, flat).astype(np.int64)
        masked = np.zeros(numbers.size, dtype=bool)
        for rule in context.qa_rules:
            masked |= ((numbers >> rule.bit) & ((1 << rule.width) - 1)) >= rule.at_least
        if layer.nodata is not None:
            masked |= numbers == int(layer.nodata)
        invalid[key] = masked
    data = CellData(
        parcel=local.astype(np.int64),
        count=int(parcels.size),
        weight=weight,
        values=values,
        invalid=invalid,
        raw=raw,
    )
    sums = kernel.accumulate(data)
    sums["covered_m2"] = data.sum(weight)
    sums["pixel_coverage"] = data.sum(cells.fraction)
    return ChunkResult(parcels=parcels.astype(np.int64), sums=sums)


@dataclass
class Totals:
    """Per-parcel sums over all chunks."""

    count: int
    sums: dict[str, FloatArray] = field(default_factory=dict)

    def add(self, result: ChunkResult) -> None:
        for name, value in result.sums.items():
            target = self.sums.get(name)
            if target is None:
                fill = (
                    np.inf
                    if name.startswith("min_")
                    else -np.inf
                    if name.startswith("max_")
                    else 0.0
                )
                target = np.full((self.count, *value.shape[1:]), fill, dtype=np.float64)
                self.sums[name] = target
            if name.startswith("min_"):
                np.minimum.at(target, result.parcels, value)
            elif name.startswith("max_"):
                np.maximum.at(target, result.parcels, value)
            else:
                np.add.at(target, result.parcels, value)

    def get(self, name: str, *shape: int) -> FloatArray:
        value = self.sums.get(name)
        if value is None:
            fill = (
                np.inf if name.startswith("min_") else -np.inf if name.startswith("max_") else 0.0
            )
            return np.full((self.count, *shape), fill, dtype=np.float64)
        return value


def _fill(name: str) -> float:
    if name.startswith("min_"):
        return float(np.inf)
    if name.startswith("max_"):
        return float(-np.inf)
    return 0.0


def run(
    work: Plan,
    context: Context,
    count: int,
    *,
    progress: Progress | None = None,
    scheduler: Any = None,
    processes: int = 1,
    workers_started: Callable[[], None] = lambda: None,
) -> Totals:
    """Run every chunk here (in ``processes`` worker processes when more than one) or on a
    Dask cluster, and add up the results in chunk order. ``workers_started()`` is called once
    the worker processes exist, or at once when there are none: a caller that wants a thread
    running alongside starts it there, so that no thread runs when the workers are forked."""
    totals = Totals(count=count)
    total_chunks = work.chunk_count
    if scheduler is None:
        if processes > 1 and total_chunks >= 2 * processes:
            results = iterate_processes(work, context, processes, workers_started=workers_started)
        else:
            workers_started()
            results = iterate_local(work, context)
        try:
            for done, result in enumerate(results, start=1):
                totals.add(result)
                if progress:
                    progress(done, total_chunks)  # may raise to stop the run
        finally:
            getattr(results, "close", lambda: None)()  # now, not when the frames are freed
        return totals
    from mrv.distributed import run_on_dask

    workers_started()
    for result in run_on_dask(scheduler, tasks(work, CHUNKS_PER_TASK), context, progress):
        totals.add(result)
    return totals


def geographic_row_areas(grid: Grid, semi_major: float, semi_minor: float) -> FloatArray:
    """Exact ellipsoidal area (m2) of one cell in each row of a north-up lon/lat grid.

    Area between latitudes phi1 < phi2 over a longitude span dl (radians):
    dl * b^2 / 2 * [q(phi2) - q(phi1)], q(phi) = sin(phi) / (1 - e^2 sin^2 phi)
    + ln((1 + e sin phi) / (1 - e sin phi)) / (2e).
    """
    a_lon, _b, _c, _d, e_lat, f_lat = grid.transform
    edges = f_lat + e_lat * np.arange(grid.height + 1, dtype=np.float64)
    phi = np.radians(np.clip(edges, -90.0, 90.0))
    ecc2 = 1.0 - (semi_minor / semi_major) ** 2
    sin_phi = np.sin(phi)
    if ecc2 > 0:
        ecc = np.sqrt(ecc2)
        q = sin_phi / (1.0 - ecc2 * sin_phi**2) + np.log(
            (1.0 + ecc * sin_phi) / (1.0 - ecc * sin_phi)
        ) / (2.0 * ecc)
    else:
        q = 2.0 * sin_phi
    span = np.radians(abs(a_lon))
    areas: FloatArray = np.abs(np.diff(q)) * span * semi_minor**2 / 2.0
    return areas
