"""genreflow's shared core: config, database, audio, features and the LSTM model."""

__version__ = "0.1.0"
