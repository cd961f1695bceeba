"""Cheap unchanged reads: answers from the read models, kept until the read models move.

A dashboard read (the network summary, the market, a page of needs) is worked out from a
service's read models, and those change only when a projection applies the log. So each answer
is keyed by the *read position* of the service's views database: every projection's position on
the log, and what is parked (a parked event applied after a fix changes rows without moving a
position). While the read position stays where it was, the same request gets the same bytes:

- the body is kept in memory (per HTTP process, bounded, least recently used goes first) and
  served again without touching the read models;
- the answer carries a weak ETag made from the read position and the request (path, query, who
  asks, the business day), so a client that sends it back in `If-None-Match` gets a 304 for the
  price of reading the positions.

The read position is read *before* the answer is worked out, so an answer is never older than
the position it is kept under; a request that comes after the read models moved reads a new
position and never gets the old answer. Answers depend on who asks (a provider sees its own
agreements only), so the role and provider are in the key; and on the business day (what is
still provisional, the current quarter), so the day is too.

Concurrent requests for the same answer while it is being worked out wait for it instead of
working it out again: after the read models move, 200 connections asking for the market make
one market, not 200.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import TypeAdapter

from council.kernel import clock
from council.platform.identity import Principal
from council.platform.sql import Database

T = TypeVar("T")

MAX_BYTES = 64 * 1024 * 1024  # bodies kept per HTTP process
DEFAULT_PAGE = 100  # items in a page of a list when the request names no limit
CACHE_CONTROL = "private, no-cache"  # may be kept, but asked about again before each use


def code_fingerprint() -> str:
    """A digest of the code answering (each module's path, size and modification time): an
    answer kept under a read position is only the same answer from the same code, so ETags
    handed out before an upgrade are not honoured after it."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("shared", "services"):
        for path in sorted((root / package).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def read_position(db: Database) -> str:
    """Where a views database stands: each projection's log position and what is parked, as
    text that changes whenever a read model's rows can have changed."""
    # One statement, one round trip (Database.query): it is read on every kept read. The
    # parked events come first, as the row of the projection named '' (no projection's name).
    rows = db.query(
        "SELECT projection, log_partition, next_offset FROM projection_position"
        " UNION ALL SELECT '', CAST(COUNT(*) AS TEXT), COALESCE(SUM(attempts), 0)"
        " FROM projection_parked ORDER BY 1, 2")
    return ";".join(f"{p}@{k}={o}" for p, k, o in rows)


@dataclass(frozen=True)
class Answer:
    """A worked-out answer: its JSON body and the headers that go with it (page links)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Kept:
    position: str
    answer: Answer


class ReadCache:
    """Answers kept per request until `position()` moves (see the module's docstring)."""

    def __init__(self, position: Callable[[], str], salt: str = "",
                 max_bytes: int = MAX_BYTES) -> None:
        self.position = position
        self.salt = salt  # another code version must not share ETags with this one
        self.max_bytes = max_bytes
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}
        self.hits = self.misses = 0

    def answer(self, request: Request, who: str, make: Callable[[], Answer]) -> Response:
        """The answer to `request` from `who` (a key naming what they may see): 304 if the
        client holds it already, else the kept body, else `make()`'s, kept."""
        key = _request_key(request, who)
        position = self.position()
        etag = self._etag(position, key)
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        found = self._get(key, position)
        if found is None:
            with self._lock:
                making = self._making.setdefault(key, threading.Lock())
            with making:  # one request works it out; the others wait for it
                found = self._get(key, position)
                if found is None:
                    found = make()
                    self._put(key, position, found)
                    self.misses += 1
                else:
                    self.hits += 1
                with self._lock:
                    self._making.pop(key, None)
        else:
            self.hits += 1
        return Response(found.body, media_type="application/json",
                        headers={**found.headers, **headers})

    def _etag(self, position: str, key: str) -> str:
        digest = hashlib.sha256(f"{self.salt}\n{position}\n{key}".encode()).hexdigest()[:32]
        return f'W/"{digest}"'

    def _get(self, key: str, position: str) -> Answer | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept.position != position:
                return None
            self._kept.move_to_end(key)
            return kept.answer

    def _put(self, key: str, position: str, answer: Answer) -> None:
        size = len(answer.body)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old.answer.body)
            self._kept[key] = _Kept(position, answer)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.answer.body)


def _request_key(request: Request, who: str) -> str:
    query = "&".join(sorted(request.url.query.split("&"))) if request.url.query else ""
    return f"{request.url.path}?{query}\n{who}\n{clock.now().date().isoformat()}"


def _matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): W/ prefixes do not count."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def json_of(value: Any, shape: Any) -> bytes:
    """`value` as the JSON FastAPI would answer for a route whose response model is `shape`."""
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter.dump_json(value)


def page_links(request: Request, limit: int, offset: int, more: bool) -> dict[str, str]:
    """RFC 8288 `Link` header for a page of a list: first, prev and (if there is more) next,
    each the request's own URL with another offset."""
    def at(start: int) -> str:
        url = request.url.include_query_params(limit=limit, offset=start)
        return f"<{url.path}?{url.query}>"

    links = [f'{at(0)}; rel="first"']
    if offset > 0:
        links.append(f'{at(max(0, offset - limit))}; rel="prev"')
    if more:
        links.append(f'{at(offset + limit)}; rel="next"')
    return {"Link": ", ".join(links)}


def page(request: Request, items: Sequence[T], limit: int, offset: int,
         shape: Any) -> Answer:
    """A page of a list read with one item more than `limit` (which says whether there is a
    next page), as an answer with its page links."""
    return Answer(json_of(list(items[:limit]), shape),
                  page_links(request, limit, offset, len(items) > limit))


def who_asks(principal: Principal) -> str:
    """The part of a principal that decides what it may see: its role and provider."""
    return f"{principal.role.value}:{principal.provider_id or ''}"


def cached(request: Request, principal: Principal, make: Callable[[], Answer],
           also: str = "") -> Response:
    """The service's read cache's answer (see ReadCache.answer); `also`: anything else the
    answer depends on (settings read per request)."""
    cache: ReadCache = request.app.state.read_cache
    return cache.answer(request, f"{who_asks(principal)}\n{also}", make)


def uncached(make: Callable[[], Answer]) -> Response:
    """An answer worked out now and not kept (a view "as of" a date, rebuilt from the log)."""
    found = make()
    return Response(found.body, media_type="application/json", headers=dict(found.headers))
