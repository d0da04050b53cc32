"""Tables of the wallet package."""
