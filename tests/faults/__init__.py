"""Fault tests: crashes and dependency restarts, with real processes and servers (issue 9)."""
