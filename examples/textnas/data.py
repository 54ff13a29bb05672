"""A synthetic text-classification task for the TextNAS space (made here: no download).

No labelled text data set ships inside the packages this project can install (scikit-learn's
20 newsgroups, torchtext, ``datasets``, NLTK's corpora all download at run time), so the task
is generated. A sequence is random tokens of variable length, right-padded with ``PAD``. Its
label has four classes, two bits of evidence of different reach, so that the choice of
operation matters:

* local: whether the bigram ``(BIGRAM_A, BIGRAM_B)`` occurs (a short convolution sees it);
* long-range: whether the token ``FIRST`` comes before the token ``SECOND``. Each occurs once,
  anywhere, usually far apart, so a window of a few tokens cannot tell their order, and
  attention without positions cannot either; a recurrent layer (or a deep stack of wide
  convolutions) can.

``label = 2 * has_bigram + first_before_second``: chance is 0.25, one bit alone gives 0.5.
"""

from __future__ import annotations

import torch

PAD, BIGRAM_A, BIGRAM_B, FIRST, SECOND = 0, 1, 2, 3, 4
FIRST_PLAIN = 5  # ordinary tokens are FIRST_PLAIN .. vocab_size - 1
N_CLASSES = 4
MARGIN, MIN_GAP = 4, 10

Batch = tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]


def make_examples(
    n: int, vocab_size: int = 32, min_len: int = 20, max_len: int = 36, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` sequences: ids ``(n, max_len)``, mask ``(n, max_len)`` (True = real), labels ``(n,)``."""
    shortest = 2 * MARGIN + MIN_GAP + 1
    if vocab_size <= FIRST_PLAIN or not shortest <= min_len <= max_len or n < 1:
        raise ValueError(
            f"make_examples: need n >= 1, vocab_size > {FIRST_PLAIN} and {shortest} <= min_len <= max_len, "
            f"got n={n}, vocab_size={vocab_size}, min_len={min_len}, max_len={max_len}"
        )
    g = torch.Generator().manual_seed(seed)

    def draw(high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=g))

    ids = torch.full((n, max_len), PAD, dtype=torch.long)
    mask = torch.zeros(n, max_len, dtype=torch.bool)
    labels = torch.zeros(n, dtype=torch.long)
    for row in range(n):
        length = min_len + draw(max_len - min_len + 1)
        tokens = torch.randint(FIRST_PLAIN, vocab_size, (length,), generator=g)
        has_bigram, in_order = bool(draw(2)), bool(draw(2))
        # the order tokens first: at least MIN_GAP apart and MARGIN away from either end, so
        # neither a short window nor the sequence's edges tell their order
        early = MARGIN + draw(length - 2 * MARGIN - MIN_GAP)
        late = early + MIN_GAP + draw(length - MARGIN - early - MIN_GAP)
        tokens[early], tokens[late] = (FIRST, SECOND) if in_order else (SECOND, FIRST)
        free = [i for i in range(length) if i not in (early, late)]
        if has_bigram:
            starts = [i for i in free if i + 1 in free]
            at = starts[draw(len(starts))]
            tokens[at], tokens[at + 1] = BIGRAM_A, BIGRAM_B
        else:  # lone halves of the bigram as distractors, never adjacent in that order
            for token in (BIGRAM_B, BIGRAM_A):
                tokens[free.pop(draw(len(free)))] = token
        if not has_bigram:
            tokens = _break_bigrams(tokens)
        ids[row, :length] = tokens
        mask[row, :length] = True
        labels[row] = 2 * int(has_bigram) + int(in_order)
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
