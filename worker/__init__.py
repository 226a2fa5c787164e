"""The Celery side of genreflow: the app, its thin tasks and the per-process model cache."""
