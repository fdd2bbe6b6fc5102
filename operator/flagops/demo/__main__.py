"""`python -m flagops.demo`."""

from flagops.demo.main import main

raise SystemExit(main())
