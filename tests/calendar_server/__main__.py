"""`python -m tests.calendar_server`: run the local Calendar server standalone."""

from tests.calendar_server.server import main

raise SystemExit(main())
