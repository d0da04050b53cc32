"""The transparency log: an append-only RFC 9162 Merkle tree of the platform's public facts.

``merkle`` holds the tree hashing and the proofs (pure functions), ``note`` the C2SP signed-note
checkpoints and witness cosignatures, ``service`` the log kept in the database: entries written by
the audited use cases, a sequencer that integrates them in batches and signs checkpoints.
"""
