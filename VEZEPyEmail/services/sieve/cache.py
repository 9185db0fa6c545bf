"""Compiled scripts kept per process, keyed by their text's SHA-256.

Parsing with sievelib costs about 2 ms for a typical script and a quarter of a second at the
64 KB limit; a delivery should pay that once per script, not per message, and never on the
event loop. Keying by content makes invalidation unnecessary: an edited script is a new key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from typing import Any

from VEZEPyEmail.services.sieve.compiler import SieveError, compile_script
from VEZEPyEmail.services.sieve.nodes import Program

MAX_ENTRIES = 512
STATE_ATTRIBUTE = "sieve_programs"


class ProgramCache:
    """A small LRU of compiled programs (or the error a script compiles to)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, Program | SieveError] = OrderedDict()

    async def compile(self, script: str) -> Program:
        """The compiled program; raises SieveError like `compile_script`."""
        key = hashlib.sha256(script.encode("utf-8", "surrogatepass")).digest()
        entry = self._entries.get(key)
        if entry is None:
            try:
                entry = await asyncio.to_thread(compile_script, script)
            except SieveError as error:
                entry = error
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if isinstance(entry, SieveError):
            raise entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)


def cache_on(state: Any) -> ProgramCache:
    """The cache that lives on the app's state, made on first use.

    A state that cannot hold one (a frozen DeliveryContext in a tool or a test) gets a fresh
    cache each time, which only costs the compilation.
    """
    cache = getattr(state, STATE_ATTRIBUTE, None)
    if isinstance(cache, ProgramCache):
        return cache
    cache = ProgramCache()
    with contextlib.suppress(AttributeError, TypeError):  # frozen dataclasses refuse
        setattr(state, STATE_ATTRIBUTE, cache)
    return cache
