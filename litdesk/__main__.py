"""Entry point: ``litdesk`` and ``python -m litdesk``."""

import sys

#: The first argument that makes the app run a projection's child process instead: a frozen
#: app has no Python to start with ``-c`` (litdesk.core.projection.CHILD_FLAG, not imported
#: here so that starting the window imports no more than it needs).
PROJECTION_CHILD_FLAG = "--projection-child"


def main() -> int:
    if getattr(sys, "frozen", False):
        import multiprocessing

        multiprocessing.freeze_support()  # a library's worker process started by the bundle
    if sys.argv[1:2] == [PROJECTION_CHILD_FLAG]:
        from litdesk.core.projection import _child_main

        del sys.argv[1]
        _child_main()
        return 0
    from litdesk.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
