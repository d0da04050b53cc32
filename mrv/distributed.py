"""Running the zonal pass on Dask distributed (optional extra ``tanhui[dist]``).

Tasks are runs of consecutive raster chunks with the edge pieces they need; workers open the
raster files themselves (the paths must be readable on every worker). Results are gathered and
combined in task order, so a cluster gives the same bytes as a local run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mrv.errors import SchedulerUnavailable

if TYPE_CHECKING:
    from mrv.zonal import ChunkResult, Context, Progress, Task


def client_for(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for an address (owned: close it) or the client given."""
    try:
        import distributed
    except ImportError as error:
        raise SchedulerUnavailable(
            input=str(scheduler), reason="dask.distributed is not installed (tanhui[dist])"
        ) from error
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        client = distributed.Client(str(scheduler), timeout="10s")  # type: ignore[no-untyped-call]
        return client, True
    except (OSError, TimeoutError) as error:
        raise SchedulerUnavailable(input=str(scheduler), reason=str(error)) from error


def run_on_dask(
    scheduler: Any,
    work: Sequence[Task],
    context: Context,
    progress: Progress | None,
) -> Iterator[ChunkResult]:
    from mrv.zonal import run_task

    client, owned = client_for(scheduler)
    try:
        shared = client.scatter(context, broadcast=True)
        futures = [client.submit(run_task, task, shared, pure=False) for task in work]
        if progress:
            import distributed

            finished = distributed.as_completed(futures)  # type: ignore[no-untyped-call]
            for done, _future in enumerate(finished, start=1):
                progress(done, len(futures))
        results = client.gather(futures)
    finally:
        if owned:
            client.close()
    for chunk_results in results:
        yield from chunk_results
