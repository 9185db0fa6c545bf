"""Attachment uploads for messages composed over HTTP: owned, size-limited, short-lived."""
