"""Matchmaking: queue tickets per mode and region, paired by rating inside a widening window."""
