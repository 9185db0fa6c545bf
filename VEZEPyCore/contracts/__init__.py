"""Wire formats one service serves and another consumes, defined once for both sides."""
