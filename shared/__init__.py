"""genreflow's shared package, a house of rooms: core, store, lifecycle, cli and errors."""

__version__ = "0.1.0"
