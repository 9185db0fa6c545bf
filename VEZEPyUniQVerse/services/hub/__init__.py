"""The home dashboard: panels from every service, fetched with the signed-in user's token."""
