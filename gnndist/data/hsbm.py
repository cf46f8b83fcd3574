"""``hsbm``: a seeded heterogeneous graph shaped like an academic graph, whose class signal runs through relations.

Papers (the target: labels, weak features, splits), authors (features), institutions and fields (featureless).
Every author, institution and field has a latent class; a paper picks its fields, its authors and the papers
it cites from its own class with probability ``homophily`` (else uniformly), and authors pick institutions
the same way. A paper's own features carry little signal (``feature_signal``), so a model that reads the
relations beats one that reads only the paper features.
"""
from __future__ import annotations

import torch

from gnndist.data.registry import random_split_masks
from gnndist.data.synthetic import _class_features
from gnndist.hetero import HeteroGraph


def _pick(classes: torch.Tensor, num_classes: int, wanted: torch.Tensor, homophily: float, generator: torch.Generator) -> torch.Tensor:
    """For every entry of ``wanted`` (a class), one node id of that class with probability ``homophily``, else any node."""
    order = torch.argsort(classes, stable=True)
    counts = torch.bincount(classes, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    same = torch.rand(wanted.numel(), generator=generator) < homophily
    within = (torch.rand(wanted.numel(), generator=generator) * counts[wanted]).long()
    anyone = torch.randint(classes.numel(), (wanted.numel(),), generator=generator)
    return torch.where(same, order[starts[wanted] + within], anyone)


def hsbm(
    *,
    num_papers: int = 3000,
    num_authors: int = 2000,
    num_institutions: int = 64,
    num_fields: int = 128,
    num_classes: int = 8,
    feature_dim: int = 32,
    feature_signal: float = 0.05,
    author_signal: float = 0.3,
    homophily: float = 0.8,
    authors_per_paper: int = 3,
    fields_per_paper: int = 2,
    citations_per_paper: int = 4,
    train_fraction: float = 0.25,
    val_fraction: float = 0.25,
    add_reverse: bool = True,
    seed: int = 0,
) -> HeteroGraph:
    """Generates the graph (see the module docstring); every count and signal is an option, everything depends on ``seed``.

    Relations: ``author writes paper``, ``paper cites paper``, ``author affiliated_with institution``,
    ``paper has_topic field`` (and their ``rev_`` reverses with ``add_reverse``).
    """
    for name, value in (("num_papers", num_papers), ("num_authors", num_authors), ("num_institutions", num_institutions), ("num_fields", num_fields)):
        if value < num_classes:
            raise ValueError(f"Expected {name} >= num_classes={num_classes} (got {value})")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"Expected homophily in [0, 1] (got {homophily})")
    generator = torch.Generator().manual_seed(seed)
    latent = {name: torch.arange(count) % num_classes for name, count in (("author", num_authors), ("institution", num_institutions), ("field", num_fields))}
    labels = torch.randint(num_classes, (num_papers,), generator=generator)

    def relation(per_paper: int, targets: torch.Tensor) -> torch.Tensor:
        papers = torch.arange(num_papers).repeat_interleave(per_paper)
        return torch.stack([papers, _pick(targets, num_classes, labels[papers], homophily, generator)])

    topics = relation(fields_per_paper, latent["field"])
    writes = relation(authors_per_paper, latent["author"]).flip(0)
    cites = relation(citations_per_paper, labels)
    cites = cites[:, cites[0] != cites[1]]
    authors = torch.arange(num_authors)
    affiliated = torch.stack([authors, _pick(latent["institution"], num_classes, latent["author"], homophily, generator)])
    return HeteroGraph.from_edge_index(
        {"paper": num_papers, "author": num_authors, "institution": num_institutions, "field": num_fields},
        {
            ("author", "writes", "paper"): writes,
            ("paper", "cites", "paper"): cites,
            ("author", "affiliated_with", "institution"): affiliated,
            ("paper", "has_topic", "field"): topics,
        },
        x={"paper": _class_features(labels, num_classes, feature_dim, feature_signal, generator), "author": _class_features(latent["author"], num_classes, feature_dim, author_signal, generator)},
        y={"paper": labels},
        num_classes={"paper": num_classes},
        add_reverse=add_reverse,
        **{name: {"paper": mask} for name, mask in random_split_masks(num_papers, train_fraction, val_fraction, None, generator).items()},
    )
