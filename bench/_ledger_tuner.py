"""A tuner that keeps a ledger of the results it received, to prove each arrived exactly once.

It proposes a seeded random architecture per parameter id (any proposal would do; the point
is the ledger). The ledger is tuner state, so it travels through ``save_checkpoint`` /
``load_checkpoint`` like any tuner's knowledge: after a crash the daemon restores it and replays
exactly the results the checkpoint missed. A result for an id already in the ledger is a double
delivery and raises, which the daemon records as the experiment's error. After each result the
whole ledger is written to ``<ledger_dir>/ledger.json`` (temp file + ``os.replace``), so the file
left after the experiment is the tuner's final state.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from manager.tuners.base import Parameters, Tuner, TunerError
from trials.searchspace import LayerChoiceSpec, SearchSpace

LEDGER_FILE = "ledger.json"


class DoubleDelivery(RuntimeError):
    """The daemon delivered a second result for one parameter id."""


class LedgerTuner(Tuner):
    """Random architectures over layer choices; a ledger of the parameter ids whose result came."""

    def __init__(self, ledger_dir: str, seed: int = 0) -> None:
        self.ledger_dir = Path(ledger_dir)
        self.seed = seed
        self.received: list[int] = []
        self._space: SearchSpace | None = None

    def update_search_space(self, space: SearchSpace) -> None:
        for choice in space:
            if not isinstance(choice, LayerChoiceSpec):
                raise TunerError(f"search space: {choice.key}: LedgerTuner takes layer choices only")
        self._space = space

    def generate_parameters(self, parameter_id: int) -> Parameters:
        assert self._space is not None
        # One generator per id: the same id gets the same architecture after any restart.
        rng = random.Random(self.seed * 1_000_003 + parameter_id)
        out: Parameters = {}
        for choice in self._space:
            assert isinstance(choice, LayerChoiceSpec)
            index = rng.randrange(len(choice.candidates))
            out[choice.key] = {"_value": choice.candidates[index], "_idx": index}
        return out

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: float) -> None:
        if parameter_id in self.received:
            raise DoubleDelivery(
                f"result of parameter {parameter_id} received twice (ledger {self.received})"
            )
        self.received.append(parameter_id)
        self._write_ledger()

    def save_checkpoint(self) -> dict[str, Any]:
        return {"received": list(self.received)}

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        self.received = [int(item) for item in state.get("received", [])]

    def _write_ledger(self) -> None:
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.ledger_dir / f".{LEDGER_FILE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(self.received))
        os.replace(temporary, self.ledger_dir / LEDGER_FILE)
