"""MX intake: accept durably first (journal.py), deliver behind it (deliverer.py)."""
