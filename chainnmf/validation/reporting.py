"""Warnings and list formatting shared by the input checks."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn"]

# The chainnmf package directory (the parent of this one), so that warn skips
# the frames of every chainnmf module, not only those of chainnmf.validation.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

# Positions listed in a message before the rest are counted as "and N more".
_LISTED = 5


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning attributed to the first caller outside chainnmf."""
    frame = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _format_list(items) -> str:
    items = [int(item) for item in items]
    listed = ", ".join(str(item) for item in items[:_LISTED])
    if len(items) > _LISTED:
        listed += f" and {len(items) - _LISTED} more"
    return f"[{listed}]"
