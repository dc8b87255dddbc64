"""run_cli turns every outcome into an exit code and one readable error line."""

from __future__ import annotations

import pytest
import typer

from cnai.cli.errors import fail, run_cli
from cnai.core.errors import FieldError, Forbidden, Invalid, NotFound

app = typer.Typer()


@app.command()
def exits(code: int) -> None:
    raise typer.Exit(code)


@app.command()
def fails() -> None:
    raise fail("bad [thing]")


@app.command()
def forbidden() -> None:
    raise Forbidden("token for namespace 'a' cannot list secrets in namespace 'b'")


@app.command()
def invalid() -> None:
    raise Invalid.of([FieldError("metadata.name", "must be a DNS-1123 label")], "Secret", "X")


@app.command()
def missing() -> None:
    raise NotFound("secrets 'db' not found")


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(["exits", "3"], 3, "", id="typer-exit-code-is-kept"),
        pytest.param(["exits", "0"], 0, "", id="success"),
        pytest.param(["fails"], 1, "error: bad [thing]", id="fail-keeps-brackets"),
        pytest.param(["forbidden"], 1, "error: forbidden: token for", id="forbidden-says-so"),
        pytest.param(["missing"], 1, "error: secrets 'db' not found", id="api-error-one-line"),
        pytest.param(
            ["invalid"], 1, "  - metadata.name: must be a DNS-1123 label", id="field-causes"
        ),
        pytest.param(["exits", "--bogus"], 2, "No such option", id="bad-flag-is-usage-error"),
    ],
)
def test_exit_codes_and_messages(
    args: list[str], code: int, stderr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(app, args) == code
    assert stderr in capsys.readouterr().err
