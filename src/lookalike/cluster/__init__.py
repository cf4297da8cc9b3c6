"""Clustering: kNN graph + components, refinement (default and learned), online assignment, engine."""

from lookalike.cluster.engine import (BY, Cluster, ClusterResult, assign_new, cluster_edges, cluster_index,
                                      cluster_vectors, merges, read_labels, stored_clusters, train_refiner)

__all__ = ["BY", "Cluster", "ClusterResult", "assign_new", "cluster_edges", "cluster_index", "cluster_vectors",
           "merges", "read_labels", "stored_clusters", "train_refiner"]
