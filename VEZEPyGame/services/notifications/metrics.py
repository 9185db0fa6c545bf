"""Summary-mail metrics: delivery attempts by outcome, and the outbox read at scrape time.

The outbox is shared by every Game process, so its depth and the age of its oldest waiting
row are read from the database when `/metrics` is scraped (VEZEPyCore.observability.scrape).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select

from VEZEPyCore.observability.scrape import scrape_hooks
from VEZEPyGame.db.notifications import SummaryMail

OUTCOMES = ("sent", "retry", "failed")


class SummaryMailMetrics:
    def __init__(self, app: FastAPI) -> None:
        registry = app.state.metrics_registry
        self.deliveries = Counter(
            "veze_summary_mail_deliveries",
            "Match-summary delivery attempts, by outcome (sent, retry, failed).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.waiting = Gauge(
            "veze_summary_mail_waiting",
            "Match summaries not delivered yet (pending in the outbox).",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "veze_summary_mail_oldest_age_seconds",
            "Age of the oldest match summary still waiting, 0 when none is.",
            registry=registry,
        )

        async def collect() -> None:
            async with app.state.sessionmaker() as session:
                count, oldest = (
                    await session.execute(
                        select(func.count(SummaryMail.id), func.min(SummaryMail.created_at)).where(
                            SummaryMail.status == "pending"
                        )
                    )
                ).one()
            self.waiting.set(count)
            if oldest is None:
                self.oldest_age.set(0)
                return
            if oldest.tzinfo is None:  # an aggregate skips the column type's UTC fix-up
                oldest = oldest.replace(tzinfo=UTC)
            self.oldest_age.set(max((datetime.now(UTC) - oldest).total_seconds(), 0.0))

        scrape_hooks(app).add("summary_mail_outbox", collect)
