"""``python -m mimaface_core ...``: the command line (:mod:`mimaface_core.cli`)."""

from __future__ import annotations

import sys

from .cli.main import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
