"""``python -m shared`` runs the genreflow command."""

from shared.cli.main import main

main()
