"""Measurement, reporting and verification: rasters + parcels + methodology -> report."""
