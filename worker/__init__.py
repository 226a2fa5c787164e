"""The Celery side of genreflow: the app (:mod:`worker.celery_app`) and its thin tasks."""
