"""Live notifications for the portal header: service events fanned in per signed-in person."""
