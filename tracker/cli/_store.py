"""Opening the store a command names, and finding experiments by id or by name."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import TYPE_CHECKING

from tracker.errors import AmbiguousNameError, ConfirmationRequiredError, NotFoundError, ValidationError
from tracker.store.location import mask_password

if TYPE_CHECKING:
    from tracker.facade.tracker import ExperimentTracker

log = logging.getLogger("tracker.cli")


def open_tracker(args: argparse.Namespace, *, create: bool = False) -> ExperimentTracker:
    """The tracker of `--url` (else $TRACKER_URL, else ./experiments.db). Commands that only read
    pass `create=False` (the default): a missing store is an error and nothing is created."""
    from tracker.facade.tracker import ExperimentTracker

    tracker = ExperimentTracker(args.url, auto_upgrade=False, create=create)
    log.info("opened %s (%s store)", tracker.url, tracker.backend)
    return tracker


def list_command(args: argparse.Namespace, tracker: ExperimentTracker) -> str:
    """The command that lists the experiments of the store this command used."""
    if args.url is None or mask_password(args.url) != args.url:
        return "tracker experiments list"  # the store comes from $TRACKER_URL, or the URL has a password
    return f"tracker --url {shlex.quote(tracker.url)} experiments list"


def experiment_ids(args: argparse.Namespace, tracker: ExperimentTracker, refs: list[str]) -> list[int]:
    """The ids of the experiments that `refs` name: an id (digits) or an exact name each. All are
    found before anything is done, so an unknown one stops the command with nothing changed."""
    ids = []
    for ref in refs:
        try:
            ids.append(tracker.experiment_id(int(ref) if ref.isdigit() else ref))
        except AmbiguousNameError:
            raise
        except NotFoundError as exc:
            raise NotFoundError(f"{exc}; see them with `{list_command(args, tracker)}`") from None
        except ValidationError as exc:
            raise ValidationError("EXPERIMENT", f"{ref!r}: {exc.problem}") from None
    log.info("experiments %s: ids %s", " ".join(refs), ids)
    return ids


def confirm(args: argparse.Namespace, question: str, refusal: str) -> bool:
    """True with --yes, or when the person at the terminal answers y or yes to `question`.
    Without a terminal, raises ConfirmationRequiredError with `refusal`: a sentence saying what
    needs confirming and how to give it ("upgrading ... needs confirmation; ... run again with --yes")."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise ConfirmationRequiredError(refusal)
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
