"""The JSON API: one module per area, described by ``openapi``."""
