"""Run forge's node-side Python on a node that does not have forge installed.

The modules a program needs travel on stdin as JSON; a short bootstrap given
with ``python3 -c`` imports them from there and runs the main module. Node
modules therefore import only the standard library, numpy, the GPU library
and each other (see docs/checks.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

BOOTSTRAP = (
    "import json,sys,runpy,importlib.abc,importlib.util\n"
    "d=json.loads(sys.stdin.read());S=d['modules']\n"
    "class F(importlib.abc.MetaPathFinder,importlib.abc.Loader):\n"
    " def find_spec(self,n,p,t=None):\n"
    "  k=n+'.__init__'\n"
    "  return importlib.util.spec_from_loader(n,self,is_package=k in S)"
    " if (n in S or k in S) else None\n"
    " def create_module(self,s):return None\n"
    " def get_code(self,n):\n"
    "  k=n+'.__init__' if n+'.__init__' in S else n\n"
    "  return compile(S[k],'<forge:'+k+'>','exec')\n"
    " def is_package(self,n):return n+'.__init__' in S\n"
    " def exec_module(self,m):exec(self.get_code(m.__name__),m.__dict__)\n"
    "sys.meta_path.insert(0,F());sys.argv=[d['main'],*d['argv']]\n"
    "runpy.run_module(d['main'],run_name='__main__',alter_sys=True)\n"
)


def _source(module: str) -> str:
    package, _, name = module.rpartition(".")
    return resources.files(package).joinpath(f"{name}.py").read_text(encoding="utf-8")


def python_program(main: str, modules: Sequence[str], argv: Sequence[str], *,
                   python: str = "python3") -> tuple[list[str], str]:
    """``(argv, stdin)`` that run ``python -m main argv...`` on a node, shipping ``modules``.

    Every parent package of a shipped module is shipped as an empty package,
    so ``provision/__init__.py`` and its imports never run on the node.
    """
    shipped: dict[str, str] = {}
    for mod in dict.fromkeys([*modules, main]):
        parts = mod.split(".")
        for i in range(1, len(parts)):
            shipped.setdefault(".".join(parts[:i]) + ".__init__", "")
        shipped[mod] = _source(mod)
    payload = json.dumps({"modules": shipped, "main": main, "argv": list(argv)})
    return [python, "-c", BOOTSTRAP], payload
