"""Protections every service applies: rate limits and CSRF."""
