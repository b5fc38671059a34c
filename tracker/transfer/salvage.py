"""Reading what is complete in a JSON object whose text stops early (a `json.dump` that raised
half-way, a copy cut short): every member written in full is kept, nested objects and arrays
key by key and item by item, and the place where the text stops is named.

A member counts only when its value is whole. A number at the very end of the text is not
(`1.2` may be the start of `1.25`), nor is a string or literal that stops inside itself. NaN and
±Infinity are read as Python's `json` writes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"
_NUMBER_START = re.compile(r"-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d*)?)?")
"""What a number cut short can look like (`-`, `12.`, `1e`)."""
_WORDS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


@dataclass(frozen=True)
class Salvaged:
    """What was read: `value` holds every complete member (a cut object or array holds its
    complete part); `cut` is the path where the text stops (`metrics.shift_results[0]`,
    `""` before the first member), None when the text is a whole object."""

    value: dict[str, Any]
    cut: str | None
    open_key: str | None = None
    """The top-level member the text stops inside (its value, if any, is partial)."""

    def complete(self, key: str) -> bool:
        """Whether the top-level member `key` was read in full."""
        return key in self.value and key != self.open_key


class Unreadable(ValueError):
    """The text is not the start of a JSON object, or is damaged before it stops."""


def salvage(text: str) -> Salvaged:
    """The complete members of the JSON object that `text` is, or starts; raises Unreadable."""
    start = _skip(text, 0)
    if start >= len(text) or text[start] != "{":
        raise Unreadable("it does not start with a JSON object ('{')")
    opened: list[str] = []
    value, end, cut = _object(text, start, "", opened)
    if cut is None and _skip(text, end) < len(text):
        raise Unreadable(f"unexpected text after the object, at character {_skip(text, end)}")
    return Salvaged(value, cut, opened[0] if opened else None)


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _member_value(text: str, pos: int, path: str) -> tuple[Any, int, str | None]:
    """A value at `pos`: (value, end, None) when whole; (partial, -1, cut path) when the text stops in it."""
    if pos >= len(text):
        return None, -1, path
    if text[pos] == "{":
        return _object(text, pos, path)
    if text[pos] == "[":
        return _array(text, pos, path)
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError:
        if _stops_inside(text, pos):
            return None, -1, path
        raise Unreadable(f"damaged value at {path or 'the top'} (character {pos})") from None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (_skip(text, end) >= len(text) or _NUMBER_START.fullmatch(text[pos:])):
        return None, -1, path  # a number at the very end may have lost digits ("0." of "0.05")
    return value, end, None


def _stops_inside(text: str, pos: int) -> bool:
    """Whether the scalar at `pos` is unfinished rather than wrong: the text ends inside it."""
    if text[pos] == '"':
        return _open_string(text, pos)
    tail = text[pos:]
    return _NUMBER_START.fullmatch(tail) is not None or any(word.startswith(tail) for word in _WORDS)


def _open_string(text: str, pos: int) -> bool:
    """Whether the string starting at `pos` runs to the end of the text without its closing quote."""
    pos += 1
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
        elif text[pos] == '"':
            return False
        else:
            pos += 1
    return True


def _object(text: str, pos: int, path: str, opened: list[str] | None = None) -> tuple[dict[str, Any], int, str | None]:
    """The object at `pos`; `opened` receives the name of the member the text stops inside."""
    found: dict[str, Any] = {}

    def member(at: int) -> tuple[int, str | None]:
        key, at, cut = _key(text, at, path)
        if cut is not None:
            if cut != path and opened is not None:
                opened.append(key)
            return -1, cut
        value, end, cut = _member_value(text, at, _join(path, key))
        if cut is None or value is not None:
            found[key] = value
        if cut is not None and opened is not None:
            opened.append(key)
        return end, cut

    end, cut = _items(text, pos, "}", path or "the top object", member, lambda: path)
    return found, end, cut


def _key(text: str, pos: int, path: str) -> tuple[str, int, str | None]:
    """The member name at `pos` and the position of its value; a cut path if the text stops first."""
    if pos >= len(text):
        return "", -1, path
    if text[pos] != '"':
        raise Unreadable(f"expected a member name in {path or 'the top object'} (character {pos})")
    try:
        key, pos = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError:
        if _open_string(text, pos):
            return "", -1, path
        raise Unreadable(f"damaged member name in {path or 'the top object'} (character {pos})") from None
    pos = _skip(text, pos)
    if pos >= len(text):
        return key, -1, _join(path, key)
    if text[pos] != ":":
        raise Unreadable(f"expected ':' after {_join(path, key)!r} (character {pos})")
    pos = _skip(text, pos + 1)
    if pos >= len(text):
        return key, -1, _join(path, key)
    return key, pos, None


def _array(text: str, pos: int, path: str) -> tuple[list[Any], int, str | None]:
    found: list[Any] = []

    def item(at: int) -> tuple[int, str | None]:
        value, end, cut = _member_value(text, at, f"{path}[{len(found)}]")
        if cut is None or value is not None:
            found.append(value)
        return end, cut

    end, cut = _items(text, pos, "]", path, item, lambda: f"{path}[{len(found)}]")
    return found, end, cut


def _items(
    text: str,
    pos: int,
    close: str,
    where: str,
    read: Callable[[int], tuple[int, str | None]],
    cut_at: Callable[[], str],
) -> tuple[int, str | None]:
    """Read the comma-separated items of the object or array opened at `pos` up to `close`, each
    with `read` (its end, or -1 and the cut path). (end, None) when whole; (-1, cut path) when the
    text stops first (`cut_at()` between items). Raises Unreadable naming `where`."""
    pos = _skip(text, pos + 1)
    first = True
    while True:
        if pos >= len(text):
            return -1, cut_at()
        if text[pos] == close:
            return pos + 1, None
        if not first:
            if text[pos] != ",":
                raise Unreadable(f"expected ',' or '{close}' in {where} (character {pos})")
            pos = _skip(text, pos + 1)
        first = False
        end, cut = read(pos)
        if cut is not None:
            return -1, cut
        pos = _skip(text, end)
