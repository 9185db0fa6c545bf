"""The reference for bench_message_list.py: the same newest-50 query, bare.

A FastAPI app with one async endpoint that runs the query with stdlib sqlite3 inline (on the
event loop) and `json`: no authentication, no metrics, no middleware. It is what the real
endpoint is measured against, not something to deploy. `REFERENCE_DB` names the SQLite file.
"""

from __future__ import annotations

import json
import os
import sqlite3

from fastapi import FastAPI, Response

app = FastAPI()
_connection = sqlite3.connect(os.environ["REFERENCE_DB"], check_same_thread=False)
_SQL = (
    "SELECT id, subject, from_addr, date, snippet, labels, size, spam_score, seen, flagged "
    "FROM messages WHERE mailbox_id = (SELECT id FROM mailboxes WHERE address = ?) "
    "AND folder = ? ORDER BY received_at DESC, id DESC LIMIT ?"
)


@app.get("/api/messages")
async def list_messages(user: str, limit: int = 50, folder: str = "INBOX") -> Response:
    rows = _connection.execute(_SQL, (user, folder, limit)).fetchall()
    messages = [
        {
            "id": row[0],
            "subject": row[1],
            "from_": row[2],
            "date": row[3],
            "snippet": row[4],
            "labels": json.loads(row[5]),
            "size": row[6],
            "spam_score": row[7],
            "unread": not row[8],
            "flags": ["\\Flagged"] if row[9] else [],
        }
        for row in rows
    ]
    return Response(json.dumps({"user": user, "messages": messages}), media_type="application/json")
