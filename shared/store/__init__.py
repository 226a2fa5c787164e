"""Storage: settings, the database engine and sessions, the ORM and the model registry."""
