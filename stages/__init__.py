"""The Typer CLI: one module per DVC stage; the console script is ``husai``."""
