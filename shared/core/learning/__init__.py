"""Training and evaluation: datasets, embedding caches, training runs, metrics, demo data."""
