"""The `tracker` command line.

Each command is one function, registered with `@command("group name", "help", arg(...), ...)`
in a module listed in `tracker.cli._app.COMMAND_MODULES`; to add one, write the function in a
module of this package (or a new one, added to that list). Global options (`--url`, `-v`,
`--format`) work before or after the command. Errors print one line on stderr and exit non-zero,
never a traceback.
"""

from __future__ import annotations

from tracker.cli._app import Argument, arg, build_parser, command, main

__all__ = ["Argument", "arg", "build_parser", "command", "main"]
