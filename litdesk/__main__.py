"""Entry point: ``litdesk`` and ``python -m litdesk``."""

def main() -> int:
    from litdesk.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
