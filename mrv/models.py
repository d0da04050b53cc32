"""MRV keeps no tables: reports are plain data, stored by the registry."""
