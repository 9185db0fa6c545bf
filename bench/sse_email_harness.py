"""The Email service as bench_sse_fanout.py runs it: the real app plus one publish route.

`POST /bench/publish?seq=N&users=K` publishes one mail event (stamped with the publish time)
to each of the K bench mailboxes `sse0@..` .. `sse{K-1}@..` through the app's own bus and
`publish_mail_event`, as delivery does. Everything a client meets (token check, mailbox
authorisation, metrics, the `/api/events` router) is the production code. Bench only: the
extra route has no authentication and the harness binds to 127.0.0.1.
"""

from __future__ import annotations

import time

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.streaming.events import publish_mail_event

app = create_app()
DOMAIN = "vezeuniqverse.com"


def bench_address(n: int) -> str:
    return f"sse{n}@{DOMAIN}"


@app.post("/bench/publish")
async def bench_publish(seq: int, users: int) -> dict[str, int]:
    bus = app.state.bus
    sent = time.monotonic()
    for n in range(users):
        await publish_mail_event(bus, bench_address(n), "bench.tick", seq=seq, sent=sent)
    return {"published": users}
