"""Leaderboards per season and mode: SQL is the record, a Redis sorted set the hot path."""
