"""catalog: a read-only product catalog served as JSON over HTTP, standard library only.

Routes (all GET):
  /healthz          liveness: the process is serving requests.
  /readyz           readiness: 200 while serving, 503 from the moment shutdown begins.
  /metrics          Prometheus text format (scraped through the chart's ServiceMonitor).
  /v1/items         the items, sorted by id; `?limit=N` (1..100) returns the first N.
  /v1/items/<id>    one item, or 404.

Every error, including malformed requests, is a JSON body `{"error": {"code", "message"}}`.
Logs are JSON lines on stdout, one per request plus lifecycle events.

Shutdown on SIGTERM or SIGINT: report not-ready at once, keep serving for SHUTDOWN_DRAIN_SECONDS
so that endpoint controllers and load balancers stop routing here, then stop accepting
connections, finish the requests in flight and exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger("catalog")

DEFAULT_PORT = 8080
DEFAULT_DRAIN_SECONDS = 5.0
MAX_DRAIN_SECONDS = 60.0
MAX_LIMIT = 100
EXIT_BAD_CONFIG = 2
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ITEM_PATH = re.compile(r"/v1/items/(?P<id>[A-Za-z0-9-]{1,64})")
ROUTES = ("/healthz", "/readyz", "/metrics", "/v1/items")


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    price_cents: int
    currency: str


ITEMS: Mapping[str, Item] = {
    item.id: item
    for item in (
        Item("sku-1001", "Espresso beans, 1 kg", 2490, "EUR"),
        Item("sku-1002", "Burr grinder", 14900, "EUR"),
        Item("sku-1003", "Pour-over kettle", 5900, "EUR"),
        Item("sku-1004", "Paper filters, 100", 590, "EUR"),
    )
}


@dataclass(frozen=True)
class Settings:
    port: int = DEFAULT_PORT
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read PORT, SHUTDOWN_DRAIN_SECONDS and LOG_LEVEL; raise ValueError naming the bad variable."""
        raw_port = env.get("PORT", str(DEFAULT_PORT))
        if not raw_port.isdigit() or int(raw_port) > 65535:
            raise ValueError(f"PORT must be an integer 0..65535 (0: any free port), got {raw_port!r}")
        raw_drain = env.get("SHUTDOWN_DRAIN_SECONDS", str(DEFAULT_DRAIN_SECONDS))
        try:
            drain = float(raw_drain)
        except ValueError:
            drain = -1.0
        if not 0 <= drain <= MAX_DRAIN_SECONDS:
            raise ValueError(
                f"SHUTDOWN_DRAIN_SECONDS must be a number 0..{MAX_DRAIN_SECONDS:g}, got {raw_drain!r}"
            )
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        return cls(port=int(raw_port), drain_seconds=drain, log_level=level)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's `fields` (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    LOG.handlers[:] = [handler]
    LOG.setLevel(level)
    LOG.propagate = False


class Metrics:
    """Request counters and latency sums in the Prometheus text format, labelled by route template."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._seconds: dict[str, tuple[float, int]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            total, count = self._seconds.get(route, (0.0, 0))
            self._seconds[route] = (total + seconds, count + 1)

    def render(self, ready: bool) -> str:
        lines = [
            "# HELP catalog_http_requests_total HTTP requests served, by method, route and status code.",
            "# TYPE catalog_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            seconds = sorted(self._seconds.items())
        lines += [
            f'catalog_http_requests_total{{method="{m}",route="{r}",code="{c}"}} {n}'
            for (m, r, c), n in requests
        ]
        lines += [
            "# HELP catalog_http_request_duration_seconds Time spent serving HTTP requests, by route.",
            "# TYPE catalog_http_request_duration_seconds summary",
        ]
        for route, (total, count) in seconds:
            lines.append(f'catalog_http_request_duration_seconds_sum{{route="{route}"}} {total:.6f}')
            lines.append(f'catalog_http_request_duration_seconds_count{{route="{route}"}} {count}')
        lines += [
            "# HELP catalog_ready 1 while the server accepts traffic, 0 once shutdown has begun.",
            "# TYPE catalog_ready gauge",
            f"catalog_ready {int(ready)}",
        ]
        return "\n".join(lines) + "\n"


class CatalogServer(ThreadingHTTPServer):
    """A threading HTTP server that finishes in-flight requests when it is closed."""

    daemon_threads = False  # server_close() joins the request threads ...
    block_on_close = True  # ... so that a shutdown never cuts a response short.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], items: Mapping[str, Item] = ITEMS) -> None:
        super().__init__(address, CatalogHandler)
        self.items = dict(items)
        self.metrics = Metrics()
        self.ready = threading.Event()
        self.ready.set()
        self._stopping = threading.Lock()
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def begin_shutdown(self) -> bool:
        """Report not-ready from now on. Returns False if shutdown had already begun."""
        with self._stopping:
            if self._stopped:
                return False
            self._stopped = True
        self.ready.clear()
        return True

    def drain_and_shutdown(self, drain_seconds: float) -> None:
        """Report not-ready, keep serving for `drain_seconds`, then stop `serve_forever()`.

        Call it from a thread other than the one running `serve_forever()`; the caller of
        `serve_forever()` then calls `server_close()`, which waits for in-flight requests.
        """
        if not self.begin_shutdown():
            return
        LOG.info("shutdown started", extra={"fields": {"drain_seconds": drain_seconds}})
        time.sleep(drain_seconds)
        self.shutdown()


class CatalogHandler(BaseHTTPRequestHandler):
    server: CatalogServer
    server_version = "catalog"
    sys_version = ""
    timeout = 10  # seconds a client may take to send its request (slow-client guard)

    def do_GET(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        path = url.path
        if path == "/healthz":
            self._send_json(HTTPStatus.OK, {"status": "ok"}, path, started)
        elif path == "/readyz":
            if self.server.ready.is_set():
                self._send_json(HTTPStatus.OK, {"status": "ready"}, path, started)
            else:
                self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "shutting down"}, path, started)
        elif path == "/metrics":
            body = self.server.metrics.render(self.server.ready.is_set()).encode()
            self._send(HTTPStatus.OK, body, METRICS_TYPE, path, started)
        elif path == "/v1/items":
            self._list_items(parse_qs(url.query, keep_blank_values=True), started)
        elif match := ITEM_PATH.fullmatch(path):
            item = self.server.items.get(match["id"])
            if item is None:
                self._error(HTTPStatus.NOT_FOUND, "item_not_found", f"no item {match['id']!r}", started)
            else:
                self._send_json(HTTPStatus.OK, asdict(item), "/v1/items/{id}", started)
        else:
            self._error(HTTPStatus.NOT_FOUND, "not_found", f"no route {path!r}", started)

    def _list_items(self, query: dict[str, list[str]], started: float) -> None:
        items = [asdict(self.server.items[key]) for key in sorted(self.server.items)]
        raw_limit = query.get("limit", [str(MAX_LIMIT)])[-1]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            message = f"limit must be an integer 1..{MAX_LIMIT}, got {raw_limit!r}"
            self._error(HTTPStatus.BAD_REQUEST, "invalid_parameter", message, started, route="/v1/items")
            return
        page = items[: int(raw_limit)]
        self._send_json(HTTPStatus.OK, {"items": page, "count": len(page)}, "/v1/items", started)

    def _not_allowed(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        if path in ROUTES or ITEM_PATH.fullmatch(path):
            message = f"{self.command} is not allowed on {path!r}"
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message, started)
        else:
            self._error(HTTPStatus.NOT_FOUND, "not_found", f"no route {path!r}", started)

    def do_POST(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while parsing the request (bad request line, unknown method...) as JSON too."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._error(
            status, status.phrase.lower().replace(" ", "_"), message or status.phrase, time.monotonic()
        )

    def _error(
        self, status: HTTPStatus, code: str, message: str, started: float, route: str = "other"
    ) -> None:
        body = {"error": {"code": code, "message": message}}
        self._send_json(status, body, route, started)

    def _send_json(self, status: HTTPStatus, body: object, route: str, started: float) -> None:
        self._send(status, json.dumps(body, separators=(",", ":")).encode(), JSON_TYPE, route, started)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, route: str, started: float) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET")
        # Metrics and the access log are recorded before the body goes out: a client that has
        # read its response can rely on both being there.
        seconds = time.monotonic() - started
        method = getattr(self, "command", None) or "-"
        self.server.metrics.observe(method, route, int(status), seconds)
        fields = {
            "method": method,
            "path": getattr(self, "path", "-"),
            "status": int(status),
            "duration_ms": round(seconds * 1000, 3),
            "client": self.client_address[0],
        }
        LOG.info("request", extra={"fields": fields})
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once, as JSON, by `_send`."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.warning(format % args, extra={"fields": {"client": self.client_address[0]}})


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as exc:
        configure_logging("INFO")
        LOG.error("invalid configuration", extra={"fields": {"error": str(exc)}})
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level)
    # A container listens on all of its interfaces; the pod network and the Service decide who reaches it.
    server = CatalogServer(("0.0.0.0", settings.port))  # noqa: S104

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        LOG.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
        # shutdown() blocks until serve_forever() returns, and that loop runs in this (main) thread.
        threading.Thread(
            target=server.drain_and_shutdown, args=(settings.drain_seconds,), name="shutdown", daemon=True
        ).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    LOG.info("listening", extra={"fields": {"port": server.port, "items": len(server.items)}})
    try:
        server.serve_forever()
    finally:
        server.server_close()
    LOG.info("stopped")
    return 0
