"""Tables of the registry package."""
