"""The Merkle primitives against the transparency-dev vectors, the RFC 6962 reference tree and
an independent, recursive implementation of the RFC's definitions written here."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tanhui.translog import merkle

VECTORS = Path(__file__).parent / "vectors"

# The reference leaves of RFC 6962's test tree (as used by the CT and transparency-dev tests) and
# the root of each prefix of it.
REFERENCE_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
REFERENCE_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# --- an independent implementation: the RFC's recursive definitions, word for word ----------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return _h(b"")
    if len(entries) == 1:
        return _h(b"\x00" + entries[0])
    k = _k(len(entries))
    return _h(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, entries[:k], b), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def root_by_path(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """Walk PATH's recursion back up: the last element is the outermost sibling."""
    if size == 1:
        assert not proof
        return leaf
    *inner, outer = proof
    k = _k(size)
    if index < k:
        return _h(b"\x01" + root_by_path(index, k, leaf, inner) + outer)
    return _h(b"\x01" + outer + root_by_path(index - k, size - k, leaf, inner))


def roots_by_subproof(
    m: int, n: int, b: bool, proof: list[bytes], first_root: bytes
) -> tuple[bytes, bytes]:
    """Both roots that SUBPROOF's recursion implies (old, new)."""
    if m == n:
        if b:
            assert not proof
            return first_root, first_root
        assert len(proof) == 1
        return proof[0], proof[0]
    *inner, outer = proof
    k = _k(n)
    if m <= k:
        old, new = roots_by_subproof(m, k, b, inner, first_root)
        return old, _h(b"\x01" + new + outer)
    old, new = roots_by_subproof(m - k, n - k, False, inner, first_root)
    return _h(b"\x01" + outer + old), _h(b"\x01" + outer + new)


# --- tests ------------------------------------------------------------------------------------


def _entries(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


def test_reference_tree_roots() -> None:
    leaves = [bytes.fromhex(x) for x in REFERENCE_LEAVES]
    for size in range(1, 9):
        hashes = [merkle.leaf_hash(e) for e in leaves[:size]]
        assert merkle.root_from_leaf_hashes(hashes).hex() == REFERENCE_ROOTS[size - 1]
        assert mth(leaves[:size]).hex() == REFERENCE_ROOTS[size - 1]
    assert merkle.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()


def test_proofs_equal_the_rfc_definitions_and_verify_both_ways() -> None:
    entries = _entries(45)
    hashes = [merkle.leaf_hash(e) for e in entries]
    range_hash = merkle.memory_range_hash(hashes)
    for size in range(1, 46):
        root = mth(entries[:size])
        assert merkle.root_from_leaf_hashes(hashes[:size]) == root
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, range_hash)
            assert proof == path(index, entries[:size])
            merkle.verify_inclusion(index, size, hashes[index], proof, root)
            assert root_by_path(index, size, hashes[index], proof) == root
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, range_hash)
            assert proof == (subproof(first, entries[:size], True) if first < size else [])
            first_root = mth(entries[:first])
            merkle.verify_consistency(first, size, first_root, root, proof)
            if first < size:
                assert roots_by_subproof(first, size, True, proof, first_root) == (
                    first_root,
                    root,
                )


def test_tampered_proofs_fail() -> None:
    entries = _entries(37, seed=3)
    hashes = [merkle.leaf_hash(e) for e in entries]
    range_hash = merkle.memory_range_hash(hashes)
    root = merkle.root_from_leaf_hashes(hashes)
    proof = merkle.inclusion_proof(5, 37, range_hash)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(6, 37, hashes[5], proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 37, hashes[5], proof[:-1], root)
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 37, hashes[5], bad, root)
    old_root = merkle.root_from_leaf_hashes(hashes[:20])
    consistency = merkle.consistency_proof(20, 37, range_hash)
    forked = merkle.root_from_leaf_hashes([*hashes[:19], merkle.leaf_hash(b"x"), *hashes[20:]])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(20, 37, old_root, forked, consistency)


def test_stored_subtree_decomposition_gives_every_range_the_proofs_need() -> None:
    hashes = [merkle.leaf_hash(e) for e in _entries(45, seed=11)]
    for size in range(1, 46):
        for start, end in {r for i in range(size) for r in merkle.inclusion_ranges(i, size)}:
            parts = merkle.perfect_ranges(start, end)
            folded = merkle.fold_frontier(
                [merkle.root_from_leaf_hashes(hashes[i << h : (i + 1) << h]) for h, i in parts]
            )
            assert folded == merkle.root_from_leaf_hashes(hashes[start:end])


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _load(kind: str) -> dict[str, Any]:
    return dict(json.loads((VECTORS / f"{kind}.json").read_text("utf-8")))


@pytest.mark.parametrize("name", sorted(_load("inclusion")))
def test_transparency_dev_inclusion_vectors(name: str) -> None:
    case = _load("inclusion")[name]
    proof = [_b64(p) for p in case.get("proof") or []]
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("name", sorted(_load("consistency")))
def test_transparency_dev_consistency_vectors(name: str) -> None:
    case = _load("consistency")[name]
    proof = [_b64(p) for p in case.get("proof") or []]
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof)
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)
