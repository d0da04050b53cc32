"""Use cases of carbon inclusion (plain functions taking a Session; they flush, never commit).

- :mod:`.partners`: data partners and their signing keys;
- :mod:`.signatures`: the ``X-Tanhui-Signature`` scheme;
- :mod:`.ingest`: signed batches of events -> receipts, grams and points;
- :mod:`.residents`: residents' references, accounts, balances, citizen cards;
- :mod:`.receipts`: carbon receipts;
- :mod:`.methodologies`: the factor tables in force (built-in + administrator's versions);
- :mod:`.pooling`: monthly pools of residents' reductions into the RES project.
- :mod:`.retention`: pruning fingerprints and counters that can decide nothing any more.
"""
