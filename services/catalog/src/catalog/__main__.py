"""`python -m catalog`: the container's entry point."""

from catalog.server import main

raise SystemExit(main())
