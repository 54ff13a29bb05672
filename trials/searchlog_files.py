"""The file names inside a search-log folder (docs/architecture.md, "Search log").

One-shot trainers write them (:mod:`trials.searchlog`, PyTorch and Keras alike) and the
dashboard reads them (:mod:`manager.views.searchlog`, which must not import torch); the names live here,
torch-free, so both sides spell them alike.
"""

from __future__ import annotations

SEARCH_SPACE_FILE = "search_space.json"
GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "weights.jsonl"
METRICS_FILE = "metrics.jsonl"
ARCHITECTURE_FILE = "architecture.json"
ARCHITECTURES_FILE = "architectures.jsonl"  # the export at every epoch end (CDARTS), optional
LOG_FILES = (SEARCH_SPACE_FILE, GRAPH_FILE, WEIGHTS_FILE, METRICS_FILE, ARCHITECTURE_FILE, ARCHITECTURES_FILE)
