"""The copilot: a small command assistant spoken to over a WebSocket."""
