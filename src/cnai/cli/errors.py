"""How the CLI reports failures: one clear line per error, never a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from cnai.core.config import ConfigError
from cnai.core.errors import ApiError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    err_console.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


def run_cli(app: typer.Typer) -> int:
    try:
        app(standalone_mode=False)
    except ApiError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        for cause in exc.causes:
            err_console.print(f"  - {cause.field}: {cause.message}")
        return 1
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
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
    return 0
