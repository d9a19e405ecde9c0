"""``python -m server`` is the ``kokous`` command."""

from server.cli import main

raise SystemExit(main())
