"""Link prediction metrics with OGB's definitions (``ogb.linkproppred.Evaluator``): ROC AUC, Hits@K and MRR.

Written here because neither scikit-learn nor torchmetrics is a dependency; AUC is exact (Mann-Whitney
U by average ranks, ties counted half), Hits@K and MRR follow ``ogb/linkproppred/evaluate.py``.
"""
from __future__ import annotations

import torch
from torch import Tensor


def roc_auc(pos: Tensor, neg: Tensor) -> float:
    """Area under the ROC curve of ``pos`` scores against ``neg`` scores: P(pos > neg) + P(pos == neg) / 2."""
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError(f"AUC needs positive and negative scores (got {pos.numel()} positive, {neg.numel()} negative)")
    scores = torch.cat([pos.flatten(), neg.flatten()]).double()
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    average_rank = ends - (counts.double() - 1) / 2  # 1-based, ties share their mean rank
    rank_sum = average_rank[inverse[: pos.numel()]].sum()
    n_pos, n_neg = pos.numel(), neg.numel()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hits_at_k(pos: Tensor, neg: Tensor, k: int) -> float:
    """OGB's Hits@K: the fraction of positives scored strictly above the K-th highest negative (1 with fewer than K negatives)."""
    neg = neg.flatten()
    if neg.numel() < k:
        return 1.0
    kth = torch.topk(neg, k).values[-1]
    return float((pos > kth).double().mean())


def mean_reciprocal_rank(pos: Tensor, neg: Tensor) -> float:
    """OGB's MRR: ``pos [P]`` against its own negatives ``neg [P, k]``; a tie ranks halfway between optimistic and pessimistic."""
    pos = pos.view(-1, 1)
    optimistic = (neg > pos).sum(dim=1)
    pessimistic = (neg >= pos).sum(dim=1)
    ranks = 0.5 * (optimistic + pessimistic).double() + 1
    return float((1.0 / ranks).mean())
