"""How long a large message's detail stalls the event loop, parsed inline and off the loop.

Delivers messages of the given sizes (one big attachment each) into a throwaway SQLite
mailbox, then asks `GET /api/messages/{id}` in process while a ticker on the same loop
records its longest gap between 5 ms sleeps. "inline" forces the parse onto the loop (as it
was before the detail moved to a worker thread); "thread" is what the service does now.
Prints the request's time and the loop's longest stall. Run:

    .venv/bin/python bench/bench_message_detail.py --sizes 1 10 25 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyEmail.app.main import create_app  # noqa: E402
from VEZEPyEmail.app.settings import EmailSettings  # noqa: E402
from VEZEPyEmail.services.delivery.local import deliver_local  # noqa: E402
from VEZEPyEmail.services.mailboxes.service import ensure_mailbox  # noqa: E402
from VEZEPyEmail.services.messages import detail  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
ISSUER = "http://portal.bench"
DOMAIN = "vezeuniqverse.com"
ADDRESS = f"alice@{DOMAIN}"
MODES = {"inline": 1 << 62, "thread": detail.INLINE_PARSE_BYTES}


def message(megabytes: int) -> bytes:
    built = EmailMessage()
    built["From"] = "carol@example.org"
    built["To"] = ADDRESS
    built["Subject"] = f"{megabytes} MB"
    built.set_content("The file is attached.\n")
    # base64 grows the attachment by a third: this makes the whole message about `megabytes`.
    data = os.urandom(megabytes * 1024 * 1024 * 3 // 4)
    built.add_attachment(data, maintype="application", subtype="pdf", filename="big.pdf")
    return built.as_bytes()


async def measured(client: httpx.AsyncClient, path: str, token: str) -> tuple[float, float]:
    """(request ms, longest loop stall ms) of one GET."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.005)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    took = time.perf_counter() - started
    done = True
    await ticker
    assert response.status_code == 200, response.text
    return took * 1000, worst * 1000


async def main(sizes: list[int], runs: int) -> None:
    var = Path(tempfile.mkdtemp(prefix="bench-detail-"))
    settings = EmailSettings(
        db_url=f"sqlite+aiosqlite:///{var}/email.db",
        var_dir=var,
        environment="test",
        jwt_secret=SECRET,
        jwt_iss=ISSUER,
        jwt_demo=False,
        jwks_url=None,
        service_urls={},
        asgi_services=frozenset(),
        smtp_enabled=False,
        max_message_bytes=max(sizes) * 1024 * 1024 * 2,
    )
    app = create_app(settings)
    token = issue_hs256_token(
        secret=SECRET,
        issuer=ISSUER,
        subject=ADDRESS,
        audience="veze-email",
        scopes=("email.read",),
        ttl_seconds=3600,
        extra_claims={},
    )
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as session:
            await ensure_mailbox(session, address=ADDRESS, display_name="Alice", domain=DOMAIN)
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            print(f"{'size':>6} {'mode':>7} {'request ms (median)':>20} {'longest stall ms':>17}")
            for megabytes in sizes:
                (stored,) = await deliver_local(
                    app.state,
                    raw=message(megabytes),
                    envelope_from="carol@example.org",
                    recipients=[ADDRESS],
                )
                for mode, limit in MODES.items():
                    detail.INLINE_PARSE_BYTES = limit
                    samples = [
                        await measured(client, f"/api/messages/{stored.id}", token)
                        for _ in range(runs)
                    ]
                    took = statistics.median(sample[0] for sample in samples)
                    stall = max(sample[1] for sample in samples)
                    print(f"{megabytes:>4}MB {mode:>7} {took:>20.0f} {stall:>17.0f}")
            detail.INLINE_PARSE_BYTES = MODES["thread"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 25], help="megabytes")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sizes, arguments.runs))
