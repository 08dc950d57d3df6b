"""`python -m provision` is the same as the `forge` command, exit codes included.

One difference of CPython's ``-m`` runner is undone here: once a ``KeyboardInterrupt``
has crossed an ``exec()`` of a string (as dataclass and namedtuple creation do, in
imports forge makes lazily), the runner ends the process by SIGINT after it exits,
even when forge caught the interrupt and chose exit code 130 (``Py_RunMain`` checks
the flag ``run_eval_code_obj`` set, python/cpython#85768). The `forge` script exits
with 130 through ``Py_Exit`` and never reaches that check. So after Ctrl-C, this
module flushes what is buffered, runs the exit handlers and leaves with 130 itself.
"""

import atexit
import contextlib
import os
import sys

from provision.cli.main import main
from provision.errors import ExitCode

if __name__ == "__main__":
    try:
        main()
    except SystemExit as done:
        if done.code != ExitCode.INTERRUPTED:
            raise
        atexit._run_exitfuncs()  # what the interpreter would run before exiting
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(ExitCode.INTERRUPTED)
