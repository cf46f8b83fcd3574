"""Parts with halos, the partition book, the exchange plan, quality reports and the on-disk format."""
from gnndist.partition.book import PartitionBook
from gnndist.partition.format import FORMAT_VERSION, PartitionMeta, load_book, load_meta, load_part, partition_key, save_partition
from gnndist.partition.halo import ExchangePlan, halo_rings
from gnndist.partition.part import Part, assemble_graph, build_part, build_parts, iter_parts
from gnndist.partition.pipeline import partition_graph
from gnndist.partition.quality import QualityReport

__all__ = [
    "FORMAT_VERSION",
    "ExchangePlan",
    "Part",
    "PartitionBook",
    "PartitionMeta",
    "QualityReport",
    "assemble_graph",
    "build_part",
    "build_parts",
    "halo_rings",
    "iter_parts",
    "load_book",
    "load_meta",
    "load_part",
    "partition_graph",
    "partition_key",
    "save_partition",
]
