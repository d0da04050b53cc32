"""What crosses the wire for the wallet API."""
