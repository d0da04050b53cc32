"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs and their checks.

No well-kept Python library offers these primitives, so they are written here (about a hundred
lines) and pinned by the transparency-dev test vectors and an independent implementation in the
tests. Proof *generation* is expressed over subtree ranges: the caller supplies a function that
returns the hash of a range ``[start, end)`` (from a list of leaves in memory, or from the stored
perfect subtrees of the database log), so the same code serves both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_from_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes, iteratively (no recursion depth limit)."""
    if not leaves:
        return EMPTY_ROOT
    frontier: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    for leaf in leaves:
        height, value = 0, leaf
        while frontier and frontier[-1][0] == height:
            value = node_hash(frontier.pop()[1], value)
            height += 1
        frontier.append((height, value))
    return fold_frontier([value for _, value in frontier])


def fold_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root from the perfect subtrees of a tree's right edge (largest first)."""
    if not frontier:
        return EMPTY_ROOT
    value = frontier[-1]
    for left in reversed(frontier[:-1]):
        value = node_hash(left, value)
    return value


def perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """Decompose ``[start, end)`` into aligned perfect subtrees as (height, index), left first.

    Every range a proof asks for is an RFC subtree, whose hash is these parts folded from the
    right (:func:`fold_frontier`).
    """
    parts: list[tuple[int, int]] = []
    while start < end:
        height = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << height) > end - start:
            height -= 1
        parts.append((height, start >> height))
        start += 1 << height
    return parts


def memory_range_hash(leaves: Sequence[bytes]) -> RangeHash:
    def range_hash(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(leaves[start:end])

    return range_hash


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtree ranges of PATH(index, D[size]) (RFC 9162 2.1.3.1), leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return list(reversed(ranges))


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtree ranges of PROOF(first, D[second]) (RFC 9162 2.1.4.1), in proof order."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        ranges.append((start, end))
    return list(reversed(ranges))


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    return [range_hash(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, range_hash: RangeHash) -> list[bytes]:
    if first == second:
        return []
    return [range_hash(a, b) for a, b in consistency_ranges(first, second)]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes are 32 bytes")
    fn, sn, value = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            value = node_hash(value, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    return value


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``leaf`` is at ``index`` of the tree with ``root``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the tree of ``second`` extends that of ``first``
    (RFC 9162 2.1.4.2)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes is empty")
        if first_root != second_root:
            raise ProofError("equal sizes, different roots")
        return
    if any(len(p) != HASH_SIZE for p in [first_root, second_root, *proof]):
        raise ProofError("hashes are 32 bytes")
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a subtree itself
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    if fr != first_root or sr != second_root:
        raise ProofError("the consistency proof does not lead to both roots")
