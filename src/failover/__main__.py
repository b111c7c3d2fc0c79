"""``python -m failover``: the same as the ``failover`` command."""

from __future__ import annotations

from .cli._main import main

raise SystemExit(main())
