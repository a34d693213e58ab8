"""The project's exceptions. Each message is written for the person at the terminal:
it names the value, the limit, and what to do about it. The CLI prints it after "Error: "."""


class CharRNNError(Exception):
    """Base class: an error the user can act on (exit code 1 unless said otherwise)."""

    exit_code = 1


class DataError(CharRNNError):
    """The input text cannot be used: unreadable, empty, wrongly encoded, too short."""


class CheckpointError(CharRNNError):
    """A checkpoint is missing, corrupt, unsafe or incompatible."""


class ConfigError(CharRNNError):
    """Options contradict each other or the checkpoint being resumed: a usage mistake
    (exit code 2), like an existing run without --resume."""

    exit_code = 2


class UsageError(CharRNNError):
    """Bad usage that only the library can detect (exit code 2, like click's own usage errors)."""

    exit_code = 2


class TrainingDiverged(CharRNNError):
    """The loss became NaN or infinite."""


class Interrupted(CharRNNError):
    """Training was stopped by a signal after saving; exit code 128 + signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
