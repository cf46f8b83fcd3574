"""Vectorized neighbour sampling (CPU and CUDA) and deterministic seed batches for mini-batch training."""
from gnndist.sampling.sampler import NeighborSampler, SampledBatch
from gnndist.sampling.seeds import SeedLoader

__all__ = ["NeighborSampler", "SampledBatch", "SeedLoader"]
