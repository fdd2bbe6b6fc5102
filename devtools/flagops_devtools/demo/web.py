"""The meal-plan app's web side: the page (examples/mealplan-web) and what the demo reads.

The page is built from the repository (examples/mealplan-web, `make web`), not shipped
in flagops-devtools: `--web-dir` names the built folder, and without it a checkout's
examples/mealplan-web is used when the code runs from one (docs/decisions.md).

Served from the app process on loopback, with the standard library's threading server:

- `/`, `/style.css`, `/dist/app.js`: the page, bundled by `make web` (esbuild);
- `/config.json`: where the page finds the relay (address, namespace, browser token);
- `/api/arrivals`: when each flag revision reached the app's `FeatureFlags` (wall clock),
  so the demo can say how long a stage change took to reach the app.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from flagops_devtools.testing.binaries import find_checkout

WEB_APP_IN_CHECKOUT = Path("examples") / "mealplan-web"
BUNDLE = Path("dist") / "app.js"
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/dist/app.js": (str(BUNDLE), "text/javascript; charset=utf-8"),
}


class WebAppNotBuilt(RuntimeError):
    pass


def check_built(root: Path | None = None) -> Path:
    """The page's folder (`root`, else the checkout's examples/mealplan-web) once it holds
    every file the server sends; WebAppNotBuilt saying how to build it otherwise."""
    if root is None:
        checkout = find_checkout()
        if checkout is None:
            raise WebAppNotBuilt(
                "no meal-plan page: pass --web-dir FOLDER (index.html, style.css, dist/app.js),"
                f" built by `make web` in a flagops checkout ({WEB_APP_IN_CHECKOUT})"
            )
        root = checkout / WEB_APP_IN_CHECKOUT
    missing = sorted({name for name, _ in STATIC.values() if not (root / name).is_file()})
    if missing:
        raise WebAppNotBuilt(
            f"{root} lacks {', '.join(missing)}: build the meal-plan page first with"
            f" `make web` (npm ci and esbuild in {WEB_APP_IN_CHECKOUT}) or pass --web-dir"
        )
    return root


@dataclass(frozen=True)
class PageConfig:
    """What the page needs to reach the relay. The token, if any, is the browser token:
    browsers see it anyway, so its scope is one namespace and its origins the page's."""

    relay_url: str
    namespace: str
    token: str | None = None

    def to_json(self) -> bytes:
        body = {"relayUrl": self.relay_url, "namespace": self.namespace, "token": self.token}
        return json.dumps(body).encode()


class WebServer:
    def __init__(
        self,
        port: int,
        config: PageConfig,
        arrivals: Callable[[], list[dict[str, Any]]],
        root: Path | None = None,
    ) -> None:
        root = check_built(root)
        handler = _handler(root, config, arrivals)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(
    root: Path, config: PageConfig, arrivals: Callable[[], list[dict[str, Any]]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/config.json":
                self._reply(HTTPStatus.OK, "application/json", config.to_json())
            elif path == "/api/arrivals":
                self._reply(HTTPStatus.OK, "application/json", json.dumps(arrivals()).encode())
            elif path in STATIC:
                name, content_type = STATIC[path]
                self._reply(HTTPStatus.OK, content_type, (root / name).read_bytes())
            else:
                self._reply(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def _reply(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Requests are not worth a log line each; the page polls nothing.
            return

    return Handler
