"""The catalog service over real HTTP: every route, JSON errors, metrics, logs, readiness and SIGTERM.

The service is not an installed package: its `src/` folder is put on sys.path here, and the file
is named after the service so that its module name cannot collide with another service's tests
or with the repository's `tests` package.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from catalog import server as catalog  # noqa: E402 - importable only once SRC is on sys.path

Response = tuple[int, dict[str, str], bytes]


def request(port: int, path: str, method: str = "GET") -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], object]:
    status, headers, body = request(port, path, method)
    assert headers["content-type"] == "application/json"
    return status, headers, json.loads(body)


@pytest.fixture
def server() -> Iterator[catalog.CatalogServer]:
    srv = catalog.CatalogServer(("127.0.0.1", 0))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def test_healthz_reports_ok(server: catalog.CatalogServer) -> None:
    assert get_json(server.port, "/healthz")[::2] == (200, {"status": "ok"})


def test_list_items_returns_every_item_sorted_by_id(server: catalog.CatalogServer) -> None:
    status, headers, body = get_json(server.port, "/v1/items")
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert isinstance(body, dict)
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(catalog.ITEMS) and body["count"] == len(catalog.ITEMS)
    assert body["items"][0] == {
        "id": "sku-1001",
        "name": "Espresso beans, 1 kg",
        "price_cents": 2490,
        "currency": "EUR",
    }


def test_list_items_honours_limit(server: catalog.CatalogServer) -> None:
    status, _, body = get_json(server.port, "/v1/items?limit=2")
    assert status == 200 and isinstance(body, dict)
    assert [item["id"] for item in body["items"]] == ["sku-1001", "sku-1002"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "two", ""])
def test_list_items_rejects_a_bad_limit_with_a_json_error(server: catalog.CatalogServer, limit: str) -> None:
    status, _, body = get_json(server.port, f"/v1/items?limit={limit}")
    assert status == 400
    assert isinstance(body, dict) and body["error"]["code"] == "invalid_parameter"
    assert "1..100" in body["error"]["message"]


def test_get_item(server: catalog.CatalogServer) -> None:
    status, _, body = get_json(server.port, "/v1/items/sku-1003")
    assert status == 200
    assert body == {"id": "sku-1003", "name": "Pour-over kettle", "price_cents": 5900, "currency": "EUR"}


def test_unknown_item_is_a_json_404(server: catalog.CatalogServer) -> None:
    status, _, body = get_json(server.port, "/v1/items/sku-9999")
    assert status == 404
    assert body == {"error": {"code": "item_not_found", "message": "no item 'sku-9999'"}}


@pytest.mark.parametrize("path", ["/", "/v1/item", "/v1/items/", "/v1/items/a/b", "/healthz/x"])
def test_unknown_routes_are_json_404s(server: catalog.CatalogServer, path: str) -> None:
    status, _, body = get_json(server.port, path)
    assert status == 404
    assert isinstance(body, dict) and body["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_not_allowed(server: catalog.CatalogServer, method: str) -> None:
    status, headers, body = get_json(server.port, "/v1/items/sku-1001", method)
    assert status == 405 and headers["allow"] == "GET"
    assert isinstance(body, dict) and body["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n", 414), (b"BREW /v1/items HTTP/1.0\r\n\r\n", 501)],
    ids=["uri-too-long", "unknown-method"],
)
def test_protocol_errors_are_json_too(server: catalog.CatalogServer, raw: bytes, status: int) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode()
    assert b"Content-Type: application/json" in head
    assert set(json.loads(body)["error"]) == {"code", "message"}


def test_metrics_count_requests_by_route_template(server: catalog.CatalogServer) -> None:
    request(server.port, "/v1/items/sku-1001")
    request(server.port, "/v1/items/sku-1002")
    request(server.port, "/v1/items/nope")
    status, headers, body = request(server.port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'catalog_http_requests_total{method="GET",route="/v1/items/{id}",code="200"} 2' in text
    assert 'catalog_http_requests_total{method="GET",route="other",code="404"} 1' in text
    assert "catalog_ready 1" in text
    assert "sku-1001" not in text, "raw paths would make label cardinality unbounded"


def test_each_request_is_logged_once_with_structured_fields(
    server: catalog.CatalogServer, caplog: pytest.LogCaptureFixture
) -> None:
    catalog.LOG.propagate = True  # main() turns propagation off; caplog listens on the root logger
    with caplog.at_level(logging.INFO, logger="catalog"):
        request(server.port, "/v1/items?limit=1")
    records = [r for r in caplog.records if r.getMessage() == "request"]
    assert len(records) == 1
    fields = records[0].fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["path"] == "/v1/items?limit=1" and fields["status"] == 200
    assert fields["duration_ms"] >= 0 and fields["client"] == "127.0.0.1"


def test_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord("catalog", logging.WARNING, __file__, 1, "odd %s", ("thing",), None)
    record.fields = {"status": 400}
    line = catalog.JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["msg"] == "odd thing" and entry["status"] == 400
    assert entry["ts"].endswith("+00:00")


def test_readiness_flips_when_shutdown_begins_while_serving_continues(server: catalog.CatalogServer) -> None:
    assert get_json(server.port, "/readyz")[::2] == (200, {"status": "ready"})
    assert server.begin_shutdown() is True
    assert server.begin_shutdown() is False, "a second signal must not start a second shutdown"
    assert get_json(server.port, "/readyz")[::2] == (503, {"status": "shutting down"})
    # Liveness stays green (a restart now would drop requests) and traffic is still served.
    assert get_json(server.port, "/healthz")[0] == 200
    assert get_json(server.port, "/v1/items/sku-1001")[0] == 200
    assert "catalog_ready 0" in request(server.port, "/metrics")[2].decode()


def test_drain_and_shutdown_stops_the_server(server: catalog.CatalogServer) -> None:
    stopper = threading.Thread(target=server.drain_and_shutdown, args=(0.2,))
    started = time.monotonic()
    stopper.start()
    stopper.join(timeout=5)
    assert not stopper.is_alive() and time.monotonic() - started >= 0.2
    server.server_close()
    with pytest.raises(ConnectionRefusedError):
        request(server.port, "/healthz")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, catalog.Settings(port=8080, drain_seconds=5.0, log_level="INFO")),
        (
            {"PORT": "9000", "SHUTDOWN_DRAIN_SECONDS": "0.5", "LOG_LEVEL": "debug"},
            catalog.Settings(9000, 0.5, "DEBUG"),
        ),
        ({"PORT": "0"}, catalog.Settings(port=0)),
    ],
)
def test_settings_from_env(env: dict[str, str], expected: catalog.Settings) -> None:
    assert catalog.Settings.from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT must be an integer 0..65535"),
        ({"PORT": "70000"}, "PORT must be an integer 0..65535"),
        ({"PORT": "-1"}, "PORT must be an integer 0..65535"),
        ({"SHUTDOWN_DRAIN_SECONDS": "soon"}, "SHUTDOWN_DRAIN_SECONDS must be a number 0..60"),
        ({"SHUTDOWN_DRAIN_SECONDS": "61"}, "SHUTDOWN_DRAIN_SECONDS must be a number 0..60"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'LOUD'"),
    ],
)
def test_settings_reject_bad_values_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.Settings.from_env(env)


def test_main_exits_2_on_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    try:
        assert catalog.main() == catalog.EXIT_BAD_CONFIG
    finally:
        catalog.LOG.handlers.clear()
        catalog.LOG.propagate = True


def test_sigterm_drains_then_exits_cleanly() -> None:
    """The real entry point, as the container runs it: `python -m catalog`, then SIGTERM."""
    env = {**os.environ, "PORT": "0", "SHUTDOWN_DRAIN_SECONDS": "1", "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(20, proc.kill)  # never hang the suite on a server that does not start
    watchdog.start()
    try:
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline())
        assert listening["msg"] == "listening" and listening["level"] == "info"
        port = int(listening["port"])
        assert get_json(port, "/readyz")[0] == 200

        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 0.9
        while get_json(port, "/readyz")[0] != 503:
            assert time.monotonic() < deadline, "readiness did not flip after SIGTERM"
            time.sleep(0.02)
        assert get_json(port, "/v1/items")[0] == 200, "requests during the drain are still served"

        assert proc.wait(timeout=10) == 0
        out, err = proc.communicate()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lifecycle = [entry["msg"] for entry in map(json.loads, out.splitlines()) if entry["msg"] != "request"]
    assert lifecycle == ["signal received", "shutdown started", "stopped"]
    assert err == ""
