"""What crosses the wire for the market API."""
