"""Listings, orders, checkout and payment providers, settlement, ecological compensation."""
