"""Projects, parcels, farmer households, contracts, lifecycle, batches and serials, retirements."""
