"""What the fault drills share."""
import signal


def as_from_a_terminal() -> None:
    """A preexec_fn: Ctrl-C acts as it does for a command started in a terminal (a test session run in the
    background has SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
