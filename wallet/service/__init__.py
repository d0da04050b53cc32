"""Use cases of the wallet: a double-entry, multi-asset ledger (plain functions taking a Session;
they flush, never commit).

The names below are the interface other packages code against (registry, market, carbon
inclusion); the sub-modules hold the implementation:

- :mod:`wallet.service.accounts`: assets, accounts, system accounts, balances, freezing;
- :mod:`wallet.service.entries`: ``post_entry``, ``post_entries`` (batches), reversals;
- :mod:`wallet.service.distributions`: ``post_distribution`` (credit many accounts from one
  source in one entry, ADR 0073);
- :mod:`wallet.service.holds`: ``hold``, ``capture_hold``, ``void_hold``, ``expire_holds``;
- :mod:`wallet.service.history`: ``list_postings`` (cursor pages, CSV), totals and postings
  by entry code;
- :mod:`wallet.service.verify`: ``verify_ledger`` (recompute balances, check the chains);
- :mod:`wallet.service.engine` and :mod:`wallet.service.chain`: how entries are applied.
"""

from wallet.service.accounts import (
    ASSET_CNY,
    ASSET_POINTS,
    ASSET_REDUCTION_G,
    HOT_SHARDS,
    SYSTEM_ACCOUNTS,
    Balance,
    OwnerTotals,
    account_for,
    balances_of,
    credit_asset,
    ensure_asset,
    find_account,
    get_account,
    get_balance,
    locked_balance,
    open_account,
    owner_totals,
    resolve_owner,
    set_frozen,
    system_account,
)
from wallet.service.anchors import Anchor, anchor_chains, latest_anchor
from wallet.service.distributions import (
    MAX_DISTRIBUTION_CREDITS,
    Distribution,
    post_distribution,
)
from wallet.service.entries import (
    MAX_BATCH_ENTRIES,
    EntryRequest,
    EntryResult,
    Transfer,
    entry_postings,
    find_entry_by_key,
    get_entry,
    post_entries,
    post_entry,
    reverse_entry,
    submit_entry,
    transfers_of,
)
from wallet.service.history import (
    DEFAULT_PAGE_SIZE,
    MAX_CSV_ROWS,
    CodeTotals,
    EntryCredit,
    PostingLine,
    PostingPage,
    count_entries,
    credits_by_entry,
    list_postings,
    postings_csv,
    postings_of_code,
    totals_by_code,
)
from wallet.service.holds import (
    capture_hold,
    expire_hold,
    expire_holds,
    get_hold,
    hold,
    is_expired,
    lapsed_hold_debits,
    submit_hold,
    void_hold,
)
from wallet.service.verify import LedgerReport, verify_ledger, verify_ledger_snapshot

__all__ = [
    "ASSET_CNY",
    "ASSET_POINTS",
    "ASSET_REDUCTION_G",
    "DEFAULT_PAGE_SIZE",
    "HOT_SHARDS",
    "MAX_BATCH_ENTRIES",
    "MAX_CSV_ROWS",
    "MAX_DISTRIBUTION_CREDITS",
    "SYSTEM_ACCOUNTS",
    "Anchor",
    "Balance",
    "CodeTotals",
    "Distribution",
    "EntryCredit",
    "EntryRequest",
    "EntryResult",
    "LedgerReport",
    "OwnerTotals",
    "PostingLine",
    "PostingPage",
    "Transfer",
    "account_for",
    "anchor_chains",
    "balances_of",
    "capture_hold",
    "count_entries",
    "credit_asset",
    "credits_by_entry",
    "ensure_asset",
    "entry_postings",
    "expire_hold",
    "expire_holds",
    "find_account",
    "find_entry_by_key",
    "get_account",
    "get_balance",
    "get_entry",
    "get_hold",
    "hold",
    "is_expired",
    "lapsed_hold_debits",
    "latest_anchor",
    "list_postings",
    "locked_balance",
    "open_account",
    "owner_totals",
    "post_distribution",
    "post_entries",
    "post_entry",
    "postings_csv",
    "postings_of_code",
    "resolve_owner",
    "reverse_entry",
    "set_frozen",
    "submit_entry",
    "submit_hold",
    "system_account",
    "totals_by_code",
    "transfers_of",
    "verify_ledger",
    "verify_ledger_snapshot",
    "void_hold",
]
