"""``python -m relay``: exactly ``tsunagu relay`` (same flags, settings and errors)."""

from __future__ import annotations

import sys

from tsunagu.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["relay", *sys.argv[1:]]))
