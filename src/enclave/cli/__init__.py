"""The admin CLI (typer). Commands call core services as the host console; never raw SQL."""
