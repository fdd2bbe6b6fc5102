"""`python -m flagops_devtools.calendar_server`: run the local Calendar server standalone."""

from flagops_devtools.calendar_server.server import main

raise SystemExit(main())
