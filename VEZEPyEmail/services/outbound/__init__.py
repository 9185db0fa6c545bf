"""Outbound delivery: the durable queue of remote recipients and the worker that sends it."""
