"""Your music library: find its songs, classify many at once, keep the results, write genre tags."""
