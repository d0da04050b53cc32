"""What crosses the wire for the mrv API."""
