"""Custom tuners for tests/test_tuner_registry.py, written the way a user would.

``FirstCandidateTuner`` subclasses nasctl's Tuner; ``NniStyleTuner`` is written against NNI's
signatures and subclasses nothing.
"""

from manager.tuners.base import NoMoreTrials, Tuner


def first_decisions(space_json):
    """The short form: first candidate name of each layer choice, first input of each input choice."""
    arch = {}
    for key, spec in space_json.items():
        if spec["_type"] == "layer_choice":
            arch[key] = spec["_value"][0]
        else:
            arch[key] = [spec["_value"]["candidates"][0]]
    return arch


class FirstCandidateTuner(Tuner):
    """Proposes the first candidate of every choice, ``limit`` times, in the short form."""

    def __init__(self, limit: int = 1, tag: str = "") -> None:
        self.limit = limit
        self.tag = tag
        self.space = None
        self.results: list[tuple[int, float]] = []

    def update_search_space(self, space):
        self.space = space

    def generate_parameters(self, parameter_id):
        if parameter_id >= self.limit:
            raise NoMoreTrials("limit reached")
        return first_decisions(self.space.to_json())

    def receive_trial_result(self, parameter_id, parameters, value):
        self.results.append((parameter_id, value))


class NoMoreTrialError(Exception):
    """Stands in for ``nni.NoMoreTrialError``, which an NNI tuner would import."""


class NniStyleTuner:
    """An NNI v1 tuner: plain-dict search space, ``**kwargs`` everywhere, no nasctl base class."""

    def __init__(self, optimize_mode="maximize", budget=2):
        self.optimize_mode = optimize_mode
        self.budget = budget
        self.search_space = None
        self.received = []
        self.ended = []
        self.checkpoint = None

    def update_search_space(self, search_space):
        assert isinstance(search_space, dict)
        self.search_space = search_space

    def generate_parameters(self, parameter_id, **kwargs):
        if parameter_id >= self.budget:
            raise NoMoreTrialError("budget used up")
        arch = {}
        for key, spec in self.search_space.items():
            if spec["_type"] == "layer_choice":
                arch[key] = {"_value": spec["_value"][-1], "_idx": len(spec["_value"]) - 1}
            else:
                arch[key] = {"_value": spec["_value"]["candidates"][:1], "_idx": [0]}
        return arch

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.received.append((parameter_id, parameters, value))

    def trial_end(self, parameter_id, success, **kwargs):
        self.ended.append((parameter_id, success))

    def save_checkpoint(self):
        """NNI's signature: no arguments (it writes to a checkpoint folder)."""
        return {"received": len(self.received)}

    def load_checkpoint(self):
        self.checkpoint = "loaded"


class BadOutputTuner(NniStyleTuner):
    """Returns a candidate that does not exist."""

    def generate_parameters(self, parameter_id, **kwargs):
        return {key: "no-such-op" for key in self.search_space}


class NotATuner:
    """Has no tuner methods at all."""
