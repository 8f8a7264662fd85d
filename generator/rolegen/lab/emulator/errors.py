"""The emulator's one error type, part of rolegen's error hierarchy."""

from __future__ import annotations

from rolegen.errors import RolegenError


class EmulatorError(RolegenError):
    """The emulator cannot start, or is used while stopped."""
