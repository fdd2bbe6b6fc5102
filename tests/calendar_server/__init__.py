"""A local Google Calendar v3 + OAuth 2.0 token server for tests and the demo.

    from tests.calendar_server import CalendarServer, Fault
    with CalendarServer() as server:
        key_file = server.create_service_account_file(tmp_path / "sa.json")
        ...  # api_endpoint=server.api_endpoint, token_uri=server.token_uri

Standalone: `python -m tests.calendar_server.server --help`.
"""

from tests.calendar_server.credentials import ServiceAccountKey, generate_service_account
from tests.calendar_server.server import CalendarServer, Fault, RequestRecord

__all__ = [
    "CalendarServer",
    "Fault",
    "RequestRecord",
    "ServiceAccountKey",
    "generate_service_account",
]
