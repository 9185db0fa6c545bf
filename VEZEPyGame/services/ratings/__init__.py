"""Ratings: openskill estimates per player and mode, their history, and the result hook."""
