"""The HTTP front end: JSON API, health and metrics. Thin: core services decide everything."""
