"""How the CLI reports failures: one clear line per error, never a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from cnai.core.config import ConfigError
from cnai.core.errors import ApiError, Forbidden, Unauthorized
from cnai.tracking.sdk import TrackingError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    err_console.print(f"[red]error:[/red] {escape(message)}", markup=True)
    return typer.Exit(code)


def print_api_error(exc: ApiError) -> None:
    """``error: message`` plus one line per field cause; commands that go on after a
    failure (apply, delete of several objects) report each one this way."""
    # Say "forbidden"/"unauthorized" outright: the server's message explains the rule but
    # a user scanning for why a command failed looks for the word.
    prefix = {Forbidden: "forbidden: ", Unauthorized: "unauthorized: "}.get(type(exc), "")
    err_console.print(f"[red]error:[/red] {escape(prefix + exc.message)}", markup=True)
    for cause in exc.causes:
        err_console.print(f"  - {cause.field}: {cause.message}", markup=False)


def run_cli(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run ``app`` on ``args`` (default: sys.argv) and return the exit code."""
    try:
        # Without standalone mode click returns (not raises) the code of a typer.Exit.
        code = app(args=args, standalone_mode=False)
    except ApiError as exc:
        print_api_error(exc)
        return 1
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    except TrackingError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # click's usage errors carry their own exit code
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show(file=sys.stderr)
            return code
        raise
    return code if isinstance(code, int) else 0
