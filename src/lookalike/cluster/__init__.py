"""Clustering: kNN graph + components, refinement (default and learned), online assignment, engine."""

from lookalike.cluster.engine import (BY, Cluster, ClusterResult, assign_new, cluster_edges, cluster_index,
                                      cluster_vectors, read_labels, stored_clusters, train_refiner)
from lookalike.cluster.edit import merge_clusters, merges, split_cluster

__all__ = ["BY", "Cluster", "ClusterResult", "assign_new", "cluster_edges", "cluster_index", "cluster_vectors",
           "merge_clusters", "merges", "read_labels", "split_cluster", "stored_clusters", "train_refiner"]
