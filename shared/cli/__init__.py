"""The ``genreflow`` command: its groups and the service supervisor."""
