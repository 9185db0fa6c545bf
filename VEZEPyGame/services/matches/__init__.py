"""Matches: creation, moves with clocks, resignation, flag fall, history and replay.

`service.py` changes one match inside a caller's transaction (flush only); `flows.py` commits,
publishes the events and lets the bot answer; `clock.py` is the time control; `hooks.py` is how
ratings and mail learn that a match finished.
"""
