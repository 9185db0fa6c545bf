"""Sender Rewriting Scheme for mail this server forwards, and the bounces that come back."""
