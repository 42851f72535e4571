"""``python -m cello`` is the ``cello`` command."""

from cello.cli import main

raise SystemExit(main())
