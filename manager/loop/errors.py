"""What a request to the loop can fail with; the REST layer maps each to its HTTP status."""


class ExperimentNotFound(LookupError):
    """No experiment has this id (404)."""


class TrialNotFound(LookupError):
    """The experiment has no trial with this id (404)."""


class InvalidState(RuntimeError):
    """The request is not allowed in the experiment's (or trial's) current status (409)."""
