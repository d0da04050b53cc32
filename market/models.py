"""Tables of the market package."""
