"""Storage and transport backends, chosen by name in config. They import nothing from core."""
