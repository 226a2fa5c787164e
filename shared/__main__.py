"""``python -m shared`` runs the genreflow command."""

from shared.cli import main

main()
