"""Strategy code side by side: a unified diff of two trials' code (`tracker trials diff A B`,
and the dashboard's "compare code with" on the trial page)."""

from __future__ import annotations

import difflib


def code_diff(old: str | None, new: str | None, old_label: str, new_label: str, context: int = 3) -> str:
    """The unified diff that turns `old` into `new` (missing code counts as empty); an empty
    string when they are the same."""
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
        n=context,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
