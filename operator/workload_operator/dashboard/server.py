"""The dashboard's web server: the pages, and the board's changes pushed to them as server-sent events.

It keeps one watch per collection (Workloads, the operator's pods, Events about Workloads; one each per namespace
when given a list) and never polls. A page gets a snapshot when it connects, then only differences, at most every
FLUSH_SECONDS; a page too slow to keep up is disconnected (its EventSource reconnects and starts from a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ipaddress
import json
import logging
import pathlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.dashboard.board import Board, state_map
from workload_operator.kube import Kube, list_and_watch
from workload_operator.manifests import POD_SELECTOR

AGENT = "workload-operator-dashboard/0.1.0"
FLUSH_SECONDS = 0.1       # changes are batched this long: a burst of 1,000 transitions is a few messages, not 1,000
KEEPALIVE_SECONDS = 15    # a comment line this often keeps idle streams open through proxies and port-forwards
CLIENT_BACKLOG = 200      # messages queued for one page before it is dropped as too slow
STATIC = pathlib.Path(__file__).parent / "static"
# The page loads nothing from anywhere else, and the browser is told to refuse it if it ever tried.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
LOOPBACK_NAMES = {"localhost"}
BOUND_TO_LOOPBACK = web.AppKey("bound_to_loopback", bool)
logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclasses.dataclass(eq=False)
class _Client:
    """One open page: its messages, and whether it fell too far behind."""

    queue: asyncio.Queue[bytes] = dataclasses.field(default_factory=lambda: asyncio.Queue(CLIENT_BACKLOG))
    page: tuple[str, str] | None = None   # (namespace, name) for a Workload's page
    shown: str | None = None              # the uid last sent to that page
    dropped: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def send(self, message: bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped.set()


class Dashboard:
    """The board, the watches that fill it, and the pages that read it."""

    def __init__(self, kube: Kube, namespaces: Sequence[str] = ()) -> None:
        self.kube, self.namespaces = kube, list(namespaces)
        self.board = Board()
        self.synced = asyncio.Event()   # every collection listed once
        self.watching: asyncio.Task[None] | None = None   # ends only with an error (a watch refused)
        self.clients: set[_Client] = set()

    # --- the watches ---------------------------------------------------------------------------

    def _collections(self) -> list[tuple[str, str | None, str, dict[str, str], Callable[..., None],
                                          Callable[..., None]]]:
        """(what, namespace, path, selectors, on_event, on_listed) for each watch."""
        found = []
        board = self.board
        for namespace in self.namespaces or [None]:
            scope = f"/namespaces/{namespace}" if namespace else ""
            found += [
                ("Workloads", namespace, f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}", {}, board.workload,
                 board.workloads_listed),
                ("pods", namespace, f"/api/v1{scope}/pods", {"label_selector": POD_SELECTOR}, board.pod,
                 board.pods_listed),
                ("Events", namespace, f"/api/v1{scope}/events", {"field_selector": "involvedObject.kind=Workload"},
                 board.event, board.events_listed),
            ]
        return found

    async def watch(self) -> None:
        """Run every watch until cancelled; a watch the API server refuses (403, 404) stops them all."""
        collections = self._collections()
        listed: set[str] = set()

        async def follow(what: str, namespace: str | None, path: str, selectors: dict[str, str],
                         on_event: Callable[..., None], on_listed: Callable[..., None]) -> None:
            try:
                async for kind, data in list_and_watch(self.kube.http, path, **selectors):
                    if kind == "LISTED":
                        on_listed(data, namespace)
                        listed.add(path)
                        if len(listed) == len(collections) and not self.synced.is_set():
                            self.board.take_changes()  # no page has seen anything yet: each starts from a snapshot
                            self.synced.set()
                    else:
                        on_event(kind, data)
            except Exception as exc:
                raise RuntimeError(f"cannot watch {what} ({path}): {exc}") from exc

        await asyncio.gather(*(follow(*collection) for collection in collections))

    async def flush(self) -> None:
        """Send what changed to the open pages, every FLUSH_SECONDS, until cancelled."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            changed, removed, touched = self.board.take_changes()
            if changed or removed:
                message = _message("changes", {"serverTime": _now(), "upsert": changed, "remove": removed})
                for client in self.clients:
                    if client.page is None:
                        client.send(message)
            for client in self.clients:
                if client.page is not None:
                    uid = self.board.by_name.get(client.page)
                    if uid != client.shown or uid in touched:
                        self._send_page(client)

    def _send_page(self, client: _Client) -> None:
        assert client.page is not None
        client.shown = self.board.by_name.get(client.page)
        client.send(_message("workload", {"serverTime": _now(), **self.board.page(*client.page)}))

    # --- the web side --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_loopback_hosts_only, _security_headers])
        app.router.add_get("/", self._index)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/api/list", self._list_stream)
        app.router.add_get("/api/workloads/{namespace}/{name}", self._page_stream)
        app.router.add_static("/static/", STATIC)
        return app

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n") if self.synced.is_set() else web.Response(status=503, text="listing\n")

    async def _list_stream(self, request: web.Request) -> web.StreamResponse:
        await self.synced.wait()
        client = _Client()
        client.send(_message("snapshot", {"serverTime": _now(), "workloads": self.board.rows(), "map": state_map(),
                                          "namespaces": self.namespaces or None}))
        return await self._stream(request, client)

    async def _page_stream(self, request: web.Request) -> web.StreamResponse:
        await self.synced.wait()
        client = _Client(page=(request.match_info["namespace"], request.match_info["name"]))
        self._send_page(client)
        return await self._stream(request, client)

    async def _stream(self, request: web.Request, client: _Client) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self.clients.add(client)
        dropped = asyncio.ensure_future(client.dropped.wait())
        try:
            while not dropped.done():
                message = asyncio.ensure_future(client.queue.get())
                done, _ = await asyncio.wait([message, dropped], timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if message not in done:
                    message.cancel()
                await response.write(message.result() if message in done else b": keep-alive\n\n")
        except (ConnectionResetError, ConnectionError):
            pass  # the page was closed
        finally:
            self.clients.discard(client)
            dropped.cancel()
        return response


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in LOOPBACK_NAMES


@web.middleware
async def _loopback_hosts_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bound to loopback, the dashboard answers only requests addressed to loopback: a web page elsewhere cannot
    read it through a DNS name rebound to 127.0.0.1."""
    bound = request.app.get(BOUND_TO_LOOPBACK, True)
    if bound and not _is_loopback(_host_name(request.host)):
        return web.Response(status=403, text="the dashboard answers only requests to localhost\n")
    return await handler(request)


def _host_name(host: str) -> str:
    """The host of a Host header, without its port ("[::1]:8000" → "::1", "localhost:8000" → "localhost")."""
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


@contextlib.asynccontextmanager
async def serving(kube: Kube, namespaces: Sequence[str] = (), *, address: str = "127.0.0.1",
                  port: int = 8000) -> AsyncIterator[tuple[Dashboard, str]]:
    """Watch and serve until the block ends; yields the dashboard and its URL (``port`` 0 picks a free one).
    A watch the API server refuses ends the block with its error."""
    dashboard = Dashboard(kube, namespaces)
    app = dashboard.app()
    app[BOUND_TO_LOOPBACK] = _is_loopback(address)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    bound = runner.addresses[0]
    host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    dashboard.watching = asyncio.create_task(dashboard.watch())
    tasks = [dashboard.watching, asyncio.create_task(dashboard.flush())]
    try:
        yield dashboard, f"http://{host}:{bound[1]}/"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await kube.http.close()

