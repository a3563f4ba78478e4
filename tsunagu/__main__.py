"""``python -m tsunagu``: the ``tsunagu`` command."""

from tsunagu.cli import main

raise SystemExit(main())
