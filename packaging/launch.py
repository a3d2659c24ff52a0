"""The frozen app's entry script (packaging/litdesk.spec): the same ``main`` as the ``litdesk``
command, which also answers the projection child's flag (see litdesk/__main__.py)."""

from litdesk.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
