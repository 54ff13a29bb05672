"""A synthetic text-classification task for the TextNAS space (made here: no download).

No labelled text data set ships inside the packages this project can install (scikit-learn's
20 newsgroups, torchtext, ``datasets``, NLTK's corpora all download at run time), so the task
is generated. A sequence is random tokens of variable length, right-padded with ``PAD``. Its
label needs two kinds of evidence, so that the choice of operation matters:

* local: whether the bigram ``(BIGRAM_A, BIGRAM_B)`` occurs (a short convolution sees it);
* long-range: whether the single ``MARKER`` token lies in the first or the second half of the
  real tokens (position relative to the sequence's own length: a GRU or attention sees it).

``label = has_bigram XOR marker_in_first_half``, so neither kind alone beats chance.
"""

from __future__ import annotations

import torch

PAD, BIGRAM_A, BIGRAM_B, MARKER = 0, 1, 2, 3
FIRST_PLAIN = 4  # ordinary tokens are FIRST_PLAIN .. vocab_size - 1

Batch = tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]


def make_examples(
    n: int, vocab_size: int = 32, min_len: int = 8, max_len: int = 24, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` sequences: ids ``(n, max_len)``, mask ``(n, max_len)`` (True = real), labels ``(n,)``."""
    if vocab_size <= FIRST_PLAIN or not 4 <= min_len <= max_len or n < 1:
        raise ValueError(
            f"make_examples: need n >= 1, vocab_size > {FIRST_PLAIN} and 4 <= min_len <= max_len, "
            f"got n={n}, vocab_size={vocab_size}, min_len={min_len}, max_len={max_len}"
        )
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((n, max_len), PAD, dtype=torch.long)
    mask = torch.zeros(n, max_len, dtype=torch.bool)
    labels = torch.zeros(n, dtype=torch.long)
    for row in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        tokens = torch.randint(FIRST_PLAIN, vocab_size, (length,), generator=g)
        half = length // 2
        first_half = bool(torch.randint(0, 2, (1,), generator=g))
        marker_at = (
            int(torch.randint(0, half, (1,), generator=g))
            if first_half
            else half + int(torch.randint(0, length - half, (1,), generator=g))
        )
        tokens[marker_at] = MARKER
        has_bigram = bool(torch.randint(0, 2, (1,), generator=g))
        if has_bigram:
            free = [i for i in range(length - 1) if marker_at not in (i, i + 1)]
            at = free[int(torch.randint(0, len(free), (1,), generator=g))]
            tokens[at], tokens[at + 1] = BIGRAM_A, BIGRAM_B
        else:  # lone halves of the bigram as distractors, never adjacent in that order
            for token in (BIGRAM_A, BIGRAM_B):
                at = int(torch.randint(0, length, (1,), generator=g))
                if at != marker_at:
                    tokens[at] = token
            tokens = _break_bigrams(tokens)
        ids[row, :length] = tokens
        mask[row, :length] = True
        labels[row] = int(has_bigram != first_half)
    return ids, mask, labels


def _break_bigrams(tokens: torch.Tensor) -> torch.Tensor:
    """Replace the second token of any accidental ``(BIGRAM_A, BIGRAM_B)`` with a plain one."""
    for i in range(len(tokens) - 1):
        if tokens[i] == BIGRAM_A and tokens[i + 1] == BIGRAM_B:
            tokens[i + 1] = FIRST_PLAIN
    return tokens


def make_batches(n_batches: int, batch_size: int = 16, seed: int = 0, **kwargs: int) -> list[Batch]:
    """Batches ``((ids, mask), labels)`` as the one-shot trainers take them; each batch is cut to
    its longest sequence, so batches differ in padded length."""
    ids, mask, labels = make_examples(n_batches * batch_size, seed=seed, **kwargs)
    batches = []
    for b in range(n_batches):
        part = slice(b * batch_size, (b + 1) * batch_size)
        width = int(mask[part].sum(dim=1).max())
        batches.append(((ids[part, :width], mask[part, :width]), labels[part]))
    return batches
