"""Ansible inventory from a Site: pure rendering plus edit-preserving, atomic writing."""

from provision.inventory.render import render_files
from provision.inventory.write import WriteReport, render_inventory, write_files

__all__ = ["WriteReport", "render_files", "render_inventory", "write_files"]
