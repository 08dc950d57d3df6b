"""forge: from racked GPU nodes to an accepted, monitored cluster."""

__version__ = "0.1.0"
