"""Former home of forge-health (``python -m provision.sweep.nhc``).

The program is :mod:`provision.node_programs.health`; this module stays so that the
``/usr/local/sbin/forge-health`` wrappers an earlier forge installed keep working
until ``forge sweep install`` rewrites them.
"""

import sys

from provision.node_programs.health import health_exit_code, main

__all__ = ["health_exit_code", "main"]

if __name__ == "__main__":
    sys.exit(main())
