"""Entry point: ``litdesk`` and ``python -m litdesk``."""

import sys

#: The first arguments that make the app run a child process (litdesk.core.child_process)
#: instead: a frozen app has no Python to start with ``-c``. They equal
#: litdesk.core.projection.CHILD_FLAG and litdesk.core.quality.CHILD_FLAG, not imported here so
#: that starting the window imports no more than it needs.
PROJECTION_CHILD_FLAG = "--projection-child"
AUDIT_CHILD_FLAG = "--audit-child"


def main() -> int:
    if getattr(sys, "frozen", False):
        import multiprocessing

        multiprocessing.freeze_support()  # a library's worker process started by the bundle
    flag = sys.argv[1] if len(sys.argv) > 1 else None
    if flag in (PROJECTION_CHILD_FLAG, AUDIT_CHILD_FLAG):
        if flag == PROJECTION_CHILD_FLAG:
            from litdesk.core.projection import _child_main
        else:
            from litdesk.core.quality import _child_main

        del sys.argv[1]
        _child_main()
        return 0
    from litdesk.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
