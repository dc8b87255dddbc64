"""``python -m cnai`` runs the CLI."""

from cnai.cli.main import main

main()
