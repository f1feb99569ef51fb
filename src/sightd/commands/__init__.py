"""Subcommands of the ``sightd`` command line, one module each (see sightd.cli)."""
