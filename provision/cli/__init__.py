"""The `forge` command line: one module per command family, loaded lazily."""
