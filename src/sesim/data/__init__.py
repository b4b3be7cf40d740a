"""sesim.data."""
