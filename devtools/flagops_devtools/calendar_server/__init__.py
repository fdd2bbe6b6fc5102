"""A local Google Calendar v3 + OAuth 2.0 token server for tests and the demo.

    from flagops_devtools.calendar_server import CalendarServer, Fault
    with CalendarServer() as server:
        key_file = server.create_service_account_file(tmp_path / "sa.json")
        ...  # api_endpoint=server.api_endpoint, token_uri=server.token_uri

Standalone: `python -m flagops_devtools.calendar_server --help` (or `... .server`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagops_devtools.calendar_server.credentials import (
        ServiceAccountKey,
        generate_service_account,
    )
    from flagops_devtools.calendar_server.server import CalendarServer, Fault, RequestRecord

__all__ = [
    "CalendarServer",
    "Fault",
    "RequestRecord",
    "ServiceAccountKey",
    "generate_service_account",
]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m flagops_devtools.calendar_server.server` does not import the module twice.
    if name in ("ServiceAccountKey", "generate_service_account"):
        from flagops_devtools.calendar_server import credentials

        return getattr(credentials, name)
    if name in ("CalendarServer", "Fault", "RequestRecord"):
        from flagops_devtools.calendar_server import server

        return getattr(server, name)
    raise AttributeError(name)
