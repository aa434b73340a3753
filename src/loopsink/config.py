"""Declare loopsink bridges in ``logging.config.dictConfig`` and run them on your loop.

``"()": "loopsink.config.bridge"`` in a ``handlers`` entry builds a bridge and its sinks;
:func:`run_bridges` (or a ``loopsink.contrib`` helper) runs them on the application's event
loop. See the dictConfig guide for the full story.
"""

from ._config import ConfiguredBridge as ConfiguredBridge
from ._config import StartPolicy as StartPolicy
from ._config import bridge as bridge
from ._config import configured_bridges as configured_bridges
from ._config import run_bridges as run_bridges

__all__ = ["ConfiguredBridge", "StartPolicy", "bridge", "configured_bridges", "run_bridges"]

# Show the public path in reprs, tracebacks and docs: loopsink.config.bridge.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "") == "loopsink._config":
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # typing aliases
            pass
del _name, _obj
