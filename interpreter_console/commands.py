"""The answering bot's ``tsunagu`` subcommand."""

from __future__ import annotations

from tsunagu.cli import Command


def run(argv: list[str]) -> int:
    """``tsunagu bot``: an automatic answering interpreter (``--help`` for its options)."""
    from interpreter_console.bot import main

    return main(argv)


BOT = Command("an automatic answering interpreter (tests, load runs, the daily test call)", run)
