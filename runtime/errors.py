"""Errors that reach the user as one line on stderr (never a traceback)."""


class JitbtError(Exception):
    """A problem with the user's input or the guest that jitbt reports and stops on."""

    exit_status = 1
