"""VEZEPyUniQVerse: the portal (identity, service directory, provisioning) on port 8000."""
