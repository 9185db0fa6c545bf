"""Mailbox search: a small query language parsed by hand, compiled to Core statements."""
