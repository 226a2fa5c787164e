"""Serving a model: inference runtimes, the staged fast path, segment voting, calibration."""
