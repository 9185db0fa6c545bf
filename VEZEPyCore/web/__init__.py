"""The common shape of a VEZE FastAPI service: app factory pieces, health, templates."""
