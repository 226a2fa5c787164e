"""The lives of jobs, training runs and webhook deliveries, as functions of a session."""
