"""Finding and calling the other services."""
