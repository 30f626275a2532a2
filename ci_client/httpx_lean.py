"""httpx, imported without its own command-line tool, for a faster `ci`.

`import httpx` also imports `httpx._main` (httpx's CLI), which pulls in rich and pygments when
they are installed: about 100 ms on every `ci` command that talks to the server, for code we
never run. httpx guards that import with `except ImportError` and installs a stub instead, so
for the duration of our one `import httpx` a meta-path finder declines that single module.
Nothing stays patched afterwards: the finder is removed, and `httpx._main` can still be
imported explicitly later. If httpx was imported before us, this changes nothing.

Use it as `from ci_client.httpx_lean import httpx`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType


class _WithoutHttpxCli(MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == "httpx._main":
            raise ImportError("the ci client does not use httpx's command-line tool")
        return None


_finder = _WithoutHttpxCli()
sys.meta_path.insert(0, _finder)
try:
    import httpx  # imported while the finder is installed
finally:
    sys.meta_path.remove(_finder)

__all__ = ["httpx"]
