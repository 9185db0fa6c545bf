"""Code every VEZE service shares: settings, auth, observability, events, service calls, db.

This package imports no service package; services import it.
"""

__version__ = "0.1.0"
