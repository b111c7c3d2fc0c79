"""``python -m failover``: the same as the ``failover`` command."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
