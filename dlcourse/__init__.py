"""dlcourse: the small shared package behind the course's lessons.

Read it in an evening; every module is a handful of plain functions:

    device    pick CUDA, then Apple MPS, then CPU (or what --device / DLCOURSE_DEVICE asks for)
    seed      one call seeds random, numpy and torch; generators for DataLoaders
    cli       the common lesson flags, the start/finish of a lesson run, friendly errors
    data      where data lives, checksummed downloads, offline detection and stand-ins
    train     the shared training loop (fit / evaluate) and atomic checkpoints
    plot      headless-safe figure saving into the run's output folder
    check     self-checks that print what was compared and fail loudly
    progress  the record of lessons a learner has finished
    syllabus  the course manifest: phases, weeks, lessons, capstones, milestones

`import dlcourse` imports none of them (and so neither torch nor transformers):
import the module you need, e.g. `from dlcourse import check, cli`.
"""

__version__ = "0.1.0"


def shorten(text, limit=120):
    """`text` on one line, cut to at most `limit` characters at a word boundary with the cut
    marked: for quoting a library's error message, never mid-word."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = text[:limit - 4]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + " ..."


class CourseError(Exception):
    """A problem the learner can fix (bad flag, missing file, corrupt checkpoint).

    Lessons let it propagate; `cli.friendly_errors()` prints it as one line and exits 2.
    """
