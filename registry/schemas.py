"""What crosses the wire for the registry API."""
