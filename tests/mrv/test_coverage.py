"""Exact coverage fractions against an independent exact computation (shapely clipping)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import MultiPolygon, Polygon, box

from mrv.coverage import coverage_in_boxes, edge_pieces, polygon_pixel_areas

HEIGHT, WIDTH = 12, 16
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # pixel space = map space (u = x, v = y)


def _dense(geometries: list[object], inverse: tuple[float, ...] = IDENTITY) -> np.ndarray:
    array = np.asarray(geometries, dtype=object)
    pieces = edge_pieces(array, inverse, HEIGHT, WIDTH)
    n = len(geometries)
    cells = coverage_in_boxes(
        pieces,
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        np.full(n, HEIGHT),
        np.zeros(n, dtype=np.int64),
        np.full(n, WIDTH),
    )
    result = np.zeros((n, HEIGHT, WIDTH))
    result[cells.polygon, cells.row, cells.col] = cells.fraction
    return result


def _clipped(geometry: object) -> np.ndarray:
    """Independent truth: the area of the polygon clipped to each unit cell."""
    result = np.zeros((HEIGHT, WIDTH))
    for row in range(HEIGHT):
        for col in range(WIDTH):
            result[row, col] = shapely.area(
                shapely.intersection(geometry, box(col, row, col + 1, row + 1))
            )
    return result


CASES = {
    "sub-pixel": box(3.2, 4.1, 3.5, 4.3),
    "hole": Polygon(
        [(1, 1), (9.5, 1.2), (9.3, 8.7), (1.4, 9)], [[(3.3, 3.3), (6.2, 3.1), (5.5, 6.6)]]
    ),
    "multipolygon with a hole": MultiPolygon(
        [
            Polygon(
                [(0.5, 0.5), (4.5, 0.5), (4.5, 4.5), (0.5, 4.5)],
                [[(1.5, 1.5), (3.5, 1.5), (3.5, 3.5), (1.5, 3.5)]],
            ),
            Polygon([(10.2, 7.7), (13.9, 8.1), (12.1, 11.6)]),
        ]
    ),
    "straddles the left and top edges": Polygon(
        [(-3.3, -2.1), (5.2, -1.7), (4.4, 6.6), (-2.2, 5.1)]
    ),
    "straddles the right and bottom edges": Polygon(
        [(12.5, 9.5), (19.1, 10.0), (18.0, 15.2), (13.3, 14.4)]
    ),
    "wholly outside": box(20, 20, 25, 25),
    "clockwise exterior": Polygon([(2, 2), (2, 7.5), (8.25, 7.5), (8.25, 2)]),
    "cell-aligned square": box(2, 3, 5, 6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_coverage_equals_clipped_areas(name: str) -> None:
    geometry = CASES[name]
    got = _dense([geometry])[0]
    assert np.abs(got - _clipped(geometry)).max() < 1e-12


def test_random_polygons_match_to_machine_precision() -> None:
    rng = np.random.default_rng(7)
    shapes = []
    for _ in range(25):
        cx, cy = rng.uniform(-2, WIDTH + 2), rng.uniform(-2, HEIGHT + 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 10)))
        radius = rng.uniform(0.1, 5, angles.size)
        ring = np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)])
        shapes.append(shapely.make_valid(Polygon(ring)))
    dense = _dense(shapes)
    for index, shape in enumerate(shapes):
        assert np.abs(dense[index] - _clipped(shape)).max() < 1e-12


def test_north_up_transform_flips_rows_and_keeps_fractions() -> None:
    geometry = CASES["hole"]
    flipped = _dense([geometry], (1.0, 0.0, 0.0, 0.0, -1.0, float(HEIGHT)))[0]
    assert np.abs(flipped[::-1, :] - _clipped(geometry)).max() < 1e-12


def test_polygon_pixel_areas_subtract_holes() -> None:
    shapes = [CASES["hole"], CASES["multipolygon with a hole"], CASES["sub-pixel"]]
    areas = polygon_pixel_areas(np.asarray(shapes, dtype=object), IDENTITY)
    assert areas == pytest.approx([shape.area for shape in shapes], rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    row0=st.integers(0, HEIGHT - 1),
    col0=st.integers(0, WIDTH - 1),
    height=st.integers(1, HEIGHT),
    width=st.integers(1, WIDTH),
)
def test_any_window_gives_the_same_fractions(row0: int, col0: int, height: int, width: int) -> None:
    """Cutting a polygon into windows (as the streaming pass does) changes nothing."""
    row1, col1 = min(HEIGHT, row0 + height), min(WIDTH, col0 + width)
    geometry = CASES["straddles the left and top edges"]
    array = np.asarray([geometry], dtype=object)
    pieces = edge_pieces(array, IDENTITY, HEIGHT, WIDTH)
    cells = coverage_in_boxes(
        pieces,
        np.array([0]),
        np.array([row0]),
        np.array([row1]),
        np.array([col0]),
        np.array([col1]),
    )
    window = np.zeros((HEIGHT, WIDTH))
    window[cells.row, cells.col] = cells.fraction
    truth = _clipped(geometry)
    assert np.abs(window[row0:row1, col0:col1] - truth[row0:row1, col0:col1]).max() < 1e-12
    outside = window.copy()
    outside[row0:row1, col0:col1] = 0
    assert not outside.any()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3_000_000), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=200,
    ),
    st.booleans(),
)
def test_points_are_ordered_by_segment_then_position_exactly(
    points: list[tuple[int, float]], near_ties: bool
) -> None:
    """The fast single-key sort of edge points gives lexsort's order, also where the float key
    cannot tell two points apart (then it must notice and fall back)."""
    from mrv.coverage import _by_segment_then_t

    segment = np.array([p[0] for p in points], dtype=np.int64)
    t = np.array([p[1] for p in points], dtype=np.float64)
    if near_ties:  # points of one far segment closer together than the key's rounding
        segment = np.concatenate([segment, [2_999_999] * 3])
        t = np.concatenate([t, [0.5, 0.5 + 1e-12, 0.5 - 1e-12]])
    order = _by_segment_then_t(segment, t)
    expected = np.lexsort((t, segment))
    assert np.array_equal(segment[order], segment[expected])
    assert np.array_equal(t[order], t[expected])


def test_cutting_parcels_in_batches_gives_the_same_pieces() -> None:
    """edge_pieces cuts a few hundred parcels at a time; the arrays must not depend on it."""
    rng = np.random.default_rng(3)
    shapes: list[object] = []
    for index in range(23):
        x, y = rng.uniform(-2, WIDTH), rng.uniform(-2, HEIGHT)
        outer = shapely.buffer(shapely.Point(x, y), rng.uniform(0.3, 4.0), quad_segs=5)
        if index % 3 == 0:
            outer = outer.difference(shapely.buffer(shapely.Point(x, y), 0.2))
        if index % 4 == 0:
            outer = MultiPolygon([outer, box(x + 5, y + 5, x + 5.7, y + 6.1)]).buffer(0)
        shapes.append(outer)
    array = np.asarray(shapes, dtype=object)
    whole = edge_pieces(array, IDENTITY, HEIGHT, WIDTH, batch=1_000)
    for batch in (1, 2, 5, 22):
        cut = edge_pieces(array, IDENTITY, HEIGHT, WIDTH, batch=batch)
        for name in ("polygon", "row", "col", "left", "right"):
            assert np.array_equal(getattr(cut, name), getattr(whole, name)), (batch, name)
        assert np.array_equal(cut.key, whole.key)
