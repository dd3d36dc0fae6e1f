"""Let typer convert wggw's plain parameters (str, Path, decimal int, list of str, absent values) without
building pydantic validators.

Why: typer 0.2x converts every parameter value, even an absent one, through a pydantic
TypeAdapter built on first use. Importing pydantic and building the adapters costs ~0.1 s,
which is a third of a short command such as `peer add` (the naive way to add a peer is a
0.07-0.3 s script). Any other value (an int, a bool given as text, a list of something
else) still goes to typer's own converter, built at that moment, so its checks and error
messages are unchanged. With a typer without these internals (older, or a future change),
`install()` does nothing and typer works as shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def install() -> bool:
    """Patch typer's per-parameter converter factory; True if it was installed."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_path
    except ImportError:
        return False
    cls = getattr(core, "_TyperParameter", None)
    original = getattr(cls, "get_runtime_param", None)
    if original is None or getattr(original, "_wggw_light", False):
        return getattr(original, "_wggw_light", False)

    @dataclass(frozen=True)
    class Light(RuntimeParam):
        """None is handled by RuntimeParam.coerce; plain str/Path/list[str] values here."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            plain = _plain(self.annotation, value, ranged=info.min is not None or info.max is not None)
            if plain is not _NOT_PLAIN:
                return plain
            if self.annotation is Path and isinstance(value, (str, Path)):
                return coerce_cli_path(Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx)
            return build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self):  # type: ignore[no-untyped-def]
        desc = self.type_descriptor
        if self._runtime_param is None and desc.file_annotation is None and desc.parameter_info.parser is None:
            self._runtime_param = Light(parameter_info=desc.parameter_info, annotation=desc.annotation)
        return original(self)

    get_runtime_param._wggw_light = True  # type: ignore[attr-defined]
    cls.get_runtime_param = get_runtime_param
    return True


_NOT_PLAIN = object()
# A decimal int that int() takes as it is: not "--5", not thousands of digits (int() refuses
# more than 4300); anything else goes to typer's converter and its usage error.
_INT = re.compile(r"-?[0-9]{1,100}")


def _plain(annotation: Any, value: Any, ranged: bool) -> Any:
    """The converted value when no conversion is needed, else _NOT_PLAIN."""
    if annotation is str and isinstance(value, str):
        return value
    if annotation is int and not ranged and isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if annotation == list[str] and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return _NOT_PLAIN
