"""VEZEPyGame: the game backend (matchmaking, matches, ratings, leaderboards) on port 8002."""
