"""Errors raised by the mrv use cases (each maps to a problem+json type).

Every message names the input at fault (``{input}``: a file path, a band name, a parcel id), so
that the CLI can print one clear line and exit with status 2 without writing a partial report.
"""

from __future__ import annotations

from tanhui.errors import DomainError, InvalidInput, NotFound
from tanhui.i18n import N_


class MrvError(DomainError):
    code = "mrv/error"
    status = 422
    title = N_("The MRV estimate cannot be computed")


class UnreadableInput(MrvError):
    code = "mrv/unreadable-input"
    title = N_("An input file cannot be read")

    def __init__(self, *, input: str, reason: str) -> None:
        super().__init__(N_("Cannot read {input}: {reason}"), input=input, reason=reason)


class UnwritableOutput(MrvError):
    code = "mrv/unwritable-output"
    title = N_("An output file cannot be written")

    def __init__(self, *, output: str, reason: str) -> None:
        super().__init__(N_("Cannot write {output}: {reason}"), output=output, reason=reason)


class BandOutOfRange(MrvError):
    code = "mrv/band-out-of-range"
    title = N_("A raster does not have the band asked for")

    def __init__(self, *, input: str, layer: str, band: int, count: int) -> None:
        super().__init__(
            N_("{input} has {count} band(s); {layer} asks for band {band}"),
            input=input,
            layer=layer,
            band=band,
            count=count,
        )


class MissingBand(MrvError):
    code = "mrv/missing-band"
    title = N_("A band the methodology needs is missing")

    def __init__(self, *, band: str, methodology: str, given: str) -> None:
        super().__init__(
            N_("Methodology {methodology} needs the band {band}; given: {given}"),
            band=band,
            methodology=methodology,
            given=given,
        )


class UndefinedCrs(MrvError):
    code = "mrv/undefined-crs"
    title = N_("An input has no usable coordinate reference system")

    def __init__(self, *, input: str, reason: str = "") -> None:
        super().__init__(
            N_("{input} has no usable coordinate reference system {reason}"),
            input=input,
            reason=reason,
        )


class GridMismatch(MrvError):
    code = "mrv/grid-mismatch"
    title = N_("Rasters are not on the same grid")

    def __init__(self, *, input: str, reference: str) -> None:
        super().__init__(
            N_("{input} is not on the same grid (CRS, transform, size) as {reference}"),
            input=input,
            reference=reference,
        )


class NoOverlap(MrvError):
    code = "mrv/no-overlap"
    title = N_("No parcel intersects the raster")

    def __init__(self, *, input: str, raster: str) -> None:
        super().__init__(
            N_("No parcel of {input} intersects the raster {raster}"), input=input, raster=raster
        )


class InvalidGeometry(MrvError):
    code = "mrv/invalid-geometry"
    title = N_("A parcel geometry is invalid and cannot be repaired")

    def __init__(self, *, input: str, parcel: str, reason: str) -> None:
        super().__init__(
            N_("Parcel {parcel} of {input} has an invalid geometry: {reason}"),
            input=input,
            parcel=parcel,
            reason=reason,
        )


class InvalidParcels(MrvError):
    code = "mrv/invalid-parcels"
    title = N_("The parcels cannot be used")

    def __init__(self, *, input: str, reason: str) -> None:
        super().__init__(N_("Parcels {input}: {reason}"), input=input, reason=reason)


class InvalidParameters(InvalidInput):
    code = "mrv/invalid-parameters"
    title = N_("Invalid MRV parameters")

    def __init__(self, *, input: str, reason: str) -> None:
        super().__init__(N_("Parameters {input}: {reason}"), input=input, reason=reason)


class InvalidTable(MrvError):
    code = "mrv/invalid-table"
    title = N_("A table file is not in the expected format")

    def __init__(self, *, input: str, reason: str) -> None:
        super().__init__(N_("{input}: {reason}"), input=input, reason=reason)


class UnknownMethodology(NotFound):
    code = "mrv/unknown-methodology"
    title = N_("Unknown methodology")

    def __init__(self, *, input: str, known: str) -> None:
        super().__init__(
            N_("No methodology named {input}; known: {known}"), input=input, known=known
        )


class SchedulerUnavailable(MrvError):
    code = "mrv/scheduler-unavailable"
    title = N_("The distributed scheduler cannot be used")

    def __init__(self, *, input: str, reason: str) -> None:
        super().__init__(
            N_("Cannot use the Dask scheduler {input}: {reason}"), input=input, reason=reason
        )


class ImplausibleValue(InvalidInput):
    code = "mrv/implausible-value"
    title = N_("A value lies outside the methodology's plausibility bounds")

    def __init__(
        self, *, input: str, name: str, value: float, low: float, high: float, source: str
    ) -> None:
        super().__init__(
            N_("{input}: {name} = {value} lies outside [{low}, {high}] ({source})"),
            input=input,
            name=name,
            value=value,
            low=low,
            high=high,
            source=source,
            rule="methodology-bounds",
        )
