"""Message request bodies; the response shapes are the shared contract in VEZEPyCore."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from VEZEPyCore.contracts.email import MessageList, MessageRead

__all__ = ["LabelsUpdate", "MessageList", "MessageRead", "ReadUpdate", "StarUpdate"]

MAX_LABELS = 20
MAX_LABEL_LENGTH = 64


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
