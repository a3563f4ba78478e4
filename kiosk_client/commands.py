"""The kiosk's ``tsunagu`` subcommand. ``kiosk_client.app`` loads only when it runs: it must
import OpenCV before PyAV (see ``kiosk_client.display``)."""

from __future__ import annotations

from tsunagu.cli import Command


def run(argv: list[str]) -> int:
    """``tsunagu kiosk``: the counter kiosk (``--help`` for its options)."""
    from kiosk_client.app import main

    return main(argv)


KIOSK = Command("the counter kiosk for a PC with a camera (`--headless` for a self-test)", run)
