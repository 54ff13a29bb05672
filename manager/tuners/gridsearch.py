"""Grid search: every architecture of a finite space once, in a fixed order, then ``NoMoreTrials``.

The order is that of :class:`~manager.tuners.actionspace.ActionSpace` sequences, compared as
tuples: the first key changes slowest and the last fastest (as ``itertools.product`` over the
keys), input choices go through their combinations in lexicographic order. ``quniform`` and
``qloguniform`` contribute the values they can take (multiples of q within the range, and the
ends); the other continuous types have no grid and the space is refused.

The state is the last architecture proposed (everything before it in the order has been
proposed or imported) and the imported architectures that lie ahead of it, which are skipped;
that is all a checkpoint holds, so a resumed experiment goes on where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manager.tuners.actionspace import Actions, ActionSpace, SeenSequences
from manager.tuners.base import NoMoreTrials, Parameters, Tuner, TunerError, check_optimize_mode
from manager.tuners.checkpoint import CheckpointFormat, space_fingerprint
from trials.searchspace import SearchSpace

CHECKPOINT = CheckpointFormat("GridSearchTuner", 1)


class GridSearchTuner(Tuner):
    """Deterministic enumeration of a finite space; ``optimize_mode`` is accepted and ignored."""

    learns_from_results = False  # results never change a grid
    multi_objective = True  # it ignores results, so any number of objectives will do

    def __init__(self, optimize_mode: str = "maximize") -> None:
        self.validate_class_args(optimize_mode=optimize_mode)
        self.optimize_mode = optimize_mode
        self._space: SearchSpace | None = None
        self._fingerprint: str | None = None
        self._actions: ActionSpace | None = None
        self._cursor: Actions | None = None
        self._ahead: SeenSequences | None = None

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))

    # -- Tuner -----------------------------------------------------------------------------------
    def update_search_space(self, space: SearchSpace) -> None:
        actions = ActionSpace(space, "GridSearch", grid_quantized=True)
        fingerprint = space_fingerprint(space)
        self._space = space
        if fingerprint != self._fingerprint:
            self._fingerprint, self._actions = fingerprint, actions
            self._cursor, self._ahead = None, SeenSequences(actions)

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._actions is None:
            raise TunerError("GridSearchTuner: update_search_space must come before generate_parameters")
        following = self._following()
        if following is None:
            raise NoMoreTrials(f"all {self._actions.size} points of the grid have been proposed")
        self._cursor = following
        return self._actions.decode(following)

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Any) -> None:
        """Results do not change a grid."""

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Architectures already evaluated are skipped when the grid reaches them."""
        for record in records:
            if isinstance(record, Mapping):
                self._skip(record.get("parameter"))

    def save_checkpoint(self) -> dict[str, Any]:
        ahead = [list(s) for s in self._ahead or () if self._cursor is None or s > self._cursor]
        return CHECKPOINT.envelope(
            space=self._fingerprint,
            cursor=list(self._cursor) if self._cursor is not None else None,
            ahead=sorted(ahead),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = CHECKPOINT.open(state)
        CHECKPOINT.check_space(state, self._fingerprint)
        assert self._actions is not None  # a fingerprint comes with the space's actions
        with CHECKPOINT.reading():
            cursor = None if state["cursor"] is None else tuple(int(a) for a in state["cursor"])
            ahead = SeenSequences(self._actions)
            for sequence in state["ahead"]:
                ahead.add(tuple(int(a) for a in sequence))
        self._cursor, self._ahead = cursor, ahead

    # -- order -----------------------------------------------------------------------------------
    def _following(self) -> Actions | None:
        """The first sequence after the cursor that was not imported; None at the end."""
        assert self._actions is not None and self._ahead is not None
        cursor = self._cursor
        if cursor is None:
            return self._first_open(()) if not self._ahead.exhausted(()) else None
        for t in reversed(range(len(cursor))):
            prefix = cursor[:t]
            later = [a for a in self._ahead.open_actions(prefix) if a > cursor[t]]
            if later:
                return self._first_open((*prefix, later[0]))
        return None

    def _first_open(self, prefix: Actions) -> Actions:
        """``prefix`` completed with the smallest action that still leads to an unskipped sequence."""
        assert self._actions is not None and self._ahead is not None
        sequence = prefix
        while len(sequence) < self._actions.length:
            sequence = (*sequence, self._ahead.open_actions(sequence)[0])
        return sequence

    def _skip(self, parameters: Any) -> None:
        if self._actions is None or self._space is None or self._ahead is None:
            return
        try:
            sequence = self._actions.encode(parameters, self._space)
        except (ValueError, TypeError):
            return
        if self._cursor is None or sequence > self._cursor:
            self._ahead.add(sequence)
