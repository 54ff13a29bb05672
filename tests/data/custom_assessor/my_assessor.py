"""Custom assessors for the assessor tests, written the way a user would.

``ThresholdAssessor`` is written against NNI's signatures and subclasses nothing: its verdicts are
its own ``AssessResult`` enum, standing in for ``nni.assessor.AssessResult``. It adds nasctl's
checkpoint methods (a dict out, a dict in). ``HalfBestAssessor`` subclasses nasctl's Assessor.
"""

import enum
import math

from manager.assessors.base import Assessor
from manager.assessors.base import AssessResult as NasctlResult


class AssessResult(enum.Enum):
    Good = True
    Bad = False


class ThresholdAssessor:
    """Bad when the latest value is worse than ``ratio`` times the best final value of completed trials."""

    def __init__(self, optimize_mode="maximize", ratio=0.5):
        self.optimize_mode = optimize_mode
        self.ratio = ratio
        self.last = {}
        self.finals = []

    def _score(self, value):
        value = float(value)
        if not math.isfinite(value):
            return -math.inf
        return value if self.optimize_mode == "maximize" else -value

    def assess_trial(self, trial_job_id, trial_history):
        score = self._score(trial_history[-1])
        self.last[trial_job_id] = score
        if not self.finals:
            return AssessResult.Good
        top = max(self.finals)
        bar = top * self.ratio if top >= 0 else top / self.ratio
        return AssessResult.Bad if score < bar else AssessResult.Good

    def trial_end(self, trial_job_id, success):
        score = self.last.pop(trial_job_id, None)
        if success and score is not None:
            self.finals.append(score)

    def save_checkpoint(self):
        return {"last": self.last, "finals": self.finals}

    def load_checkpoint(self, state):
        self.last = dict(state["last"])
        self.finals = list(state["finals"])


class HalfBestAssessor(Assessor):
    """Stops every trial at its second result, unless ``patient``."""

    def __init__(self, patient=False):
        self.patient = patient

    def assess_trial(self, trial_id, trial_history):
        return NasctlResult.Good if self.patient or len(trial_history) < 2 else NasctlResult.Bad


class AnswersMaybe:
    """An NNI-style assessor that breaks the contract: its verdict is neither Good nor Bad."""

    def assess_trial(self, trial_job_id, trial_history):
        return "maybe"

    def trial_end(self, trial_job_id, success):
        pass


class NotAnAssessor:
    def judge(self, history):
        return True
