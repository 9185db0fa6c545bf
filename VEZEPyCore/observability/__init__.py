"""Metrics, request ids, tracing and logs: installed on a service in one call."""
