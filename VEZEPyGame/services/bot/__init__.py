"""The bot opponent: alpha-beta search at three difficulty levels, and its draw verdicts."""

from VEZEPyGame.services.bot.draws import DrawVerdict, judge_draw
from VEZEPyGame.services.bot.levels import BOT_LEVELS, BotLevel, choose_move

__all__ = ["BOT_LEVELS", "BotLevel", "DrawVerdict", "choose_move", "judge_draw"]
