"""Players: the game profile each portal account gets, created by the portal's provisioning."""
