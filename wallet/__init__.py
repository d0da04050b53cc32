"""Double-entry, multi-asset ledger: accounts, journal entries, holds, balances, points."""
