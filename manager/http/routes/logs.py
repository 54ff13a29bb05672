"""``GET /experiments/{id}/trials/{trial}/log/{stream}``: a trial's stdout or stderr, whole or its tail.

A whole log is streamed, so the daemon's memory stays bounded however large the log; a tail is
read from the end of the file. Only files inside the experiment's folder are opened, symlinks
followed (``open_trial_log`` in manager/training/base.py).
"""

from __future__ import annotations

import os
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from manager.http.errors import ApiError
from manager.http.openapi import documented
from manager.http.queries import IntQuery, experiment_or_404, trial_or_404
from manager.http.state import SECURED, State
from manager.training.base import LOG_STREAMS, LogAccessError, open_trial_log, stream_file

router = APIRouter(dependencies=SECURED)

#: The last N lines; absent (-1): the whole log.
TAIL = IntQuery("tail", -1, 0)


@router.get(
    "/experiments/{experiment_id}/trials/{trial_id}/log/{stream}",
    response_class=PlainTextResponse,
    response_model=None,
    openapi_extra=documented(TAIL),
    responses={403: {"description": "the log leads outside the experiment's folder (a symlink)"}},
)
def trial_log(experiment_id: str, trial_id: str, stream: str, request: Request, state: State) -> Response:
    trial = trial_or_404(state.store, experiment_id, trial_id)
    if stream not in LOG_STREAMS:
        raise ApiError(404, f"no log {stream!r}; a trial has {' and '.join(LOG_STREAMS)}")
    tail = TAIL.read(request)
    try:
        file = open_trial_log(
            experiment_or_404(state.store, experiment_id).experiment_dir, trial.trial_dir, stream
        )
    except LogAccessError as exc:
        raise ApiError(403, f"trial {trial_id}: {exc}") from None
    if file is None:
        return PlainTextResponse("")
    if tail < 0:
        return StreamingResponse(stream_file(file), media_type="text/plain; charset=utf-8")
    with file:
        return PlainTextResponse(read_tail(file, tail).decode("utf-8", errors="replace"))


def read_tail(file: BinaryIO, count: int) -> bytes:
    """The last ``count`` lines of ``file``, read backwards in blocks (logs may be large)."""
    if count == 0:
        return b""
    file.seek(0, os.SEEK_END)
    end = file.tell()
    block = 8192
    data = b""
    position = end
    while position > 0:
        step = min(block, position)
        position -= step
        file.seek(position)
        data = file.read(step) + data
        # count+1 newlines guarantee count complete lines (the last line may lack a newline)
        if data.count(b"\n") > count:
            break
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])
