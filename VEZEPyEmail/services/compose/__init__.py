"""Composing and sending over HTTP: drafts, reply/forward prefills, RFC 5322 messages."""
