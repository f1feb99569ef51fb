"""Violations collected while reading a v0.7 document, and the error that carries them all."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sightd.errors import InvalidArgumentError

Violation = tuple[str, str]


class PostProcessingError(InvalidArgumentError):
    """A spec's outputs or a version's post-processings are invalid; ``violations`` lists every problem."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: list[Violation] = list(violations)
        message = "; ".join(f"{field}: {text}" for field, text in self.violations)
        super().__init__(message, field=self.violations[0][0] if self.violations else "")

    def __str__(self) -> str:
        return self.message


class Checker:
    """Collects violations while reading a JSON document."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def fail(self, path: str, message: str) -> None:
        self.violations.append((path, message))

    def obj(self, value: object, path: str, allowed: Sequence[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown field")
        return value

    def string(self, value: object, path: str, *, required: bool) -> str:
        if value is None:
            if required:
                self.fail(path, "is required")
            return ""
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return ""
        if required and not value:
            self.fail(path, "must not be empty")
        return value

    def boolean(self, value: object, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
            return default
        return value

    def number(self, value: object, path: str, default: float, lo: float = 0.0, hi: float = 1.0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(path, "must be a number")
            return default
        if not lo <= value <= hi:
            self.fail(path, f"must be in [{lo:g}, {hi:g}]")
            return default
        return float(value)

    def integer(self, value: object, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be an integer")
            return None
        return value

    def choice(self, value: object, path: str, choices: Sequence[str], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.fail(path, "must be one of " + ", ".join(choices))
            return default
        return str(value)

    def array(self, value: object, path: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.fail(path, "must be an array")
            return None
        return value
