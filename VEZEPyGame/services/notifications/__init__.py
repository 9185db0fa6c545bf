"""Match-summary mail: composed when a match ends, delivered through the Email service."""
