"""Provisioning: the resources a handle gets across services (for now, its mailbox)."""
