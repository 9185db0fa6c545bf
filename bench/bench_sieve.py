"""What Sieve rules cost per delivery: parsing (cold and cached) and evaluation.

Compiles a typical script and one at the 64 KB limit, then evaluates the typical script
against a realistic message many times. Prints milliseconds per operation. Run:

    .venv/bin/python bench/bench_sieve.py --runs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyEmail.services.sieve.cache import ProgramCache  # noqa: E402
from VEZEPyEmail.services.sieve.compiler import compile_script  # noqa: E402
from VEZEPyEmail.services.sieve.evaluate import MessageView, evaluate  # noqa: E402

HEAD = 'require ["fileinto", "imap4flags", "vacation"];\n'
RULE = (
    'if anyof (header :contains "subject" "report {n}", address :domain :is "from" '
    '"team{n}.example.org", header :matches "list-id" "*project-{n}*") '
    '{{ fileinto "Projects/{n}"; addflag "p{n}"; stop; }}\n'
)
MESSAGE = (
    b"Return-Path: <carol@example.org>\r\nReceived: from mx.example.org by mail\r\n"
    b"From: Carol <carol@example.org>\r\nTo: alice@vezeuniqverse.com\r\n"
    b"Subject: Weekly numbers for the board\r\nMessage-ID: <x1@example.org>\r\n"
    b"Date: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\n" + b"Body line.\r\n" * 200
)


def timed(function: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if len(ordered) > 1 else ordered[0]
    print(f"{name:44s} median {statistics.median(ordered):8.3f} ms   p95 {p95:8.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    typical = HEAD + "".join(RULE.format(n=n) for n in range(20))
    largest = HEAD + "".join(RULE.format(n=n) for n in range(400))
    while len(largest.encode()) > 64 * 1024:
        largest = largest[: largest.rindex("if anyof")]
    print(f"typical script {len(typical.encode())} bytes, largest {len(largest.encode())} bytes")
    report("compile typical (cold)", timed(lambda: compile_script(typical), 50))
    report("compile 64 KB (cold)", timed(lambda: compile_script(largest), 5))
    cache = ProgramCache()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(cache.compile(largest))
    report(
        "compile 64 KB (cached)",
        timed(lambda: loop.run_until_complete(cache.compile(largest)), args.runs),
    )
    loop.close()
    program = compile_script(typical)
    report("parse message headers", timed(lambda: MessageView.from_bytes(MESSAGE), args.runs))
    view = MessageView.from_bytes(MESSAGE)
    report("evaluate typical (no rule matches)", timed(lambda: evaluate(program, view), args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
