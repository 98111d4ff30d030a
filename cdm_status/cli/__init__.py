"""The ``cdm-status`` command: ``status``, ``wait``, ``run``, ``simulate`` and ``demo``.

Only this package writes to the terminal. ``import cdm_status`` never imports it (nor
``rich``): library users pay nothing for the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._tasks import alone
from . import _demo, _run, _simulate, _status, _wait
from ._common import CommandError
from ._sinks import OutputClosed

__all__ = ["main"]

_COMMANDS = (_status, _wait, _run, _simulate, _demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdm-status",
        description="Watch Huawei Cloud CDM jobs: ask a status, wait for many jobs, "
        "or run the bundled CDM simulator.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(commands)
    return parser


def _tolerant_streams() -> None:
    # A server's error message may hold any character; on an ASCII-only terminal
    # (PYTHONIOENCODING=ascii, LANG=C) it is written escaped instead of ending in a
    # traceback.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see docs/guides/cli.md for their meaning)."""
    _tolerant_streams()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    try:
        code: int = _unwrapped(args)
    except CommandError as error:
        print(f"cdm-status: {error}", file=sys.stderr)
        return error.exit_code
    except OutputClosed as closed:
        # What was asked was done; only its output could not be written.
        print(f"cdm-status: {closed.reason}", file=sys.stderr)
        return closed.exit_code
    except KeyboardInterrupt:
        print("cdm-status: interrupted", file=sys.stderr)
        return 130
    return code


def _unwrapped(args: argparse.Namespace) -> int:
    """``args.run(args)``; a lone exception that a task group wrapped is raised by itself,
    so that it ends as one line and its exit code, never as a traceback."""
    try:
        code: int = args.run(args)
    except BaseException as raised:
        error = alone(raised)
        if error is raised:
            raise
        raise error from None
    return code


def console_main() -> None:  # pragma: no cover - the console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
