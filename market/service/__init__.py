"""Use cases of the market: plain functions taking a Session (they flush, never commit).

- :mod:`~market.service.listings`: listings held in the wallet and the registry, search;
- :mod:`~market.service.orders`: orders and their holds, expiry;
- :mod:`~market.service.payments`: checkout, the one fulfilment path, refunds, the sandbox;
- :mod:`~market.service.settlement`: the settlement entry and its arithmetic;
- :mod:`~market.service.webhooks`: Stripe's signed events;
- :mod:`~market.service.bank`: bank transfers confirmed by finance;
- :mod:`~market.service.compensation`: judicial cases; :mod:`~market.service.funds`:
  compensation standards and payout rounds;
- :mod:`~market.service.price_index`: the daily price index and its chart;
- :mod:`~market.service.statements`: statements and receipts.
"""

from market.service import (
    bank,
    compensation,
    funds,
    listings,
    orders,
    payments,
    price_index,
    settlement,
    statements,
    webhooks,
)

__all__ = [
    "bank",
    "compensation",
    "funds",
    "listings",
    "orders",
    "payments",
    "price_index",
    "settlement",
    "statements",
    "webhooks",
]
