"""The bot opponent: alpha-beta search at three difficulty levels."""

from VEZEPyGame.services.bot.levels import BOT_LEVELS, BotLevel, choose_move

__all__ = ["BOT_LEVELS", "BotLevel", "choose_move"]
