"""The message shapes of the brief's contract (`from_` stands for the `from` header)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

MAX_LABELS = 20
MAX_LABEL_LENGTH = 64


class MessageRead(BaseModel):
    id: int
    subject: str
    from_: str
    date: datetime
    snippet: str
    labels: list[str]
    flags: list[str]
    size: int
    spam_score: float
    unread: bool


class MessageList(BaseModel):
    user: str
    messages: list[MessageRead]


class ReadUpdate(BaseModel):
    read: bool = True


class StarUpdate(BaseModel):
    starred: bool = True


class LabelsUpdate(BaseModel):
    labels: list[str] = Field(max_length=MAX_LABELS)

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, labels: list[str]) -> list[str]:
        cleaned: list[str] = []
        for label in labels:
            label = label.strip()
            if not label or len(label) > MAX_LABEL_LENGTH or any(ord(ch) < 32 for ch in label):
                raise ValueError(f"each label must be 1-{MAX_LABEL_LENGTH} printable characters")
            if label not in cleaned:
                cleaned.append(label)
        return cleaned
