"""`python -m flagops_devtools.demo`."""

from flagops_devtools.demo.main import main

raise SystemExit(main())
