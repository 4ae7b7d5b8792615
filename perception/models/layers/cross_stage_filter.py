"""StageInteractor's cross-stage filter reuse (Teng et al., "StageInteractor: Query-based Object Detector with
Cross-stage Interaction", ICCV 2023, sec. 3.3).

Each AdaMixer stage (:mod:`.adamixer`) generates from every query a channel-mixing filter, a (C/G, C/G)
matrix per group. StageInteractor lets a stage first apply the channel filters that earlier stages generated
for the same query, oldest first, each followed by a light adapter: a linear layer over the C/G channels,
added as a residual and zero-initialised, so that the reuse starts as the identity. It deepens the mixing at
almost no cost in parameters. Stage ``s`` (0-based) reuses the filters of stages ``reuse_start - 1`` to
``s - 1`` (:func:`reused_filter_counts`).
"""
from typing import Callable, List, Sequence

import torch
from torch import Tensor, nn


def reused_filter_counts(num_stages: int, reuse_start: int) -> List[int]:
    """How many earlier channel filters each stage reuses: none before ``reuse_start``, then the filters
    of all stages from ``reuse_start - 1`` on (stage 2 reuses stage 1's, stage 3 those of 1 and 2 ...)."""
    return [max(0, s - reuse_start + 1) for s in range(num_stages)]


class CrossStageFilterAdapters(nn.ModuleList):
    """The adapters of one stage's reused channel filters, one per filter.

    Args:
        channels: channels C/G of a group.
        num_reused: how many earlier filters the stage reuses (the latest ones); 0 for plain AdaMixer.
    """

    def __init__(self, channels: int, num_reused: int) -> None:
        super().__init__(nn.Linear(channels, channels) for _ in range(num_reused))
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for adapter in self:
            nn.init.zeros_(adapter.weight)
            nn.init.zeros_(adapter.bias)

    def forward(self, x: Tensor, prev_filters: Sequence[Tensor], mix: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Apply the reused filters and their adapters: ``x <- x + adapter(mix(x, filter))`` per filter.

        Args:
            x: (B, N, G, P, C/G) sampled features.
            prev_filters: channel filters (B, N, G, C/G, C/G) of earlier stages, oldest first; the last
                ``len(self)`` are applied.
            mix: the stage's channel-mixing step, ``mix(x, filter)`` of the shape of ``x``.

        Returns:
            (B, N, G, P, C/G) features.
        """
        for adapter, prev in zip(self, prev_filters[len(prev_filters) - len(self):]):
            x = x + adapter(mix(x, prev))
        return x
