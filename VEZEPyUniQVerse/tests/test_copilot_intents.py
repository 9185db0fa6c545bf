"""The copilot's command language: each documented form, and what it refuses to guess."""

from __future__ import annotations

import pytest

from VEZEPyUniQVerse.services.copilot import intents


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", intents.Help()),
        ("  What can you do? ", intents.Help()),
        ("services", intents.Services()),
        ("Unread mail", intents.UnreadMail()),
        ("search mail from alice", intents.SearchMail(query="from:alice")),
        ("find mail about the report", intents.SearchMail(query="about the report")),
        (
            "send mail to bob subject Hi: See you at 8!",
            intents.SendMail(to="bob", subject="Hi", text="See you at 8!"),
        ),
        (
            "Send an email to Carol@Example.org subject Q3 Report: attached",
            intents.SendMail(to="carol@example.org", subject="Q3 Report", text="attached"),
        ),
        ("queue ranked", intents.JoinQueue(mode="ranked")),
        ("play a casual match", intents.JoinQueue(mode="casual")),
        ("leave queue", intents.LeaveQueue()),
        ("queue status", intents.QueueStatus()),
        ("my rank", intents.MyRank()),
        ("top 10", intents.Top(count=10)),
        ("top", intents.Top(count=10)),
        ("top 9999", intents.Top(count=intents.TOP_MAX)),
        ("top 0", intents.Top(count=1)),
        ("yes", intents.Confirm(yes=True)),
        ("Cancel", intents.Confirm(yes=False)),
    ],
)
def test_documented_commands_parse(text: str, expected: intents.Intent) -> None:
    assert intents.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["make me a sandwich", "send mail", "queue", "delete all my mail", "top ten", ""]
)
def test_anything_else_is_unknown(text: str) -> None:
    assert isinstance(intents.parse(text), intents.Unknown)


def test_every_command_is_documented_in_help() -> None:
    documented = " ".join(intents.HELP)
    for word in ("unread mail", "search mail", "send mail", "queue ranked", "my rank", "top"):
        assert word in documented
