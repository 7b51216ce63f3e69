"""`python -m resnetcli` and the console script: Ctrl-C while the CLI is still importing is one line, exit 130."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from resnetcli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    run()


if __name__ == "__main__":
    main()
