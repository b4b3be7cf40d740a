"""sesim.nets."""
