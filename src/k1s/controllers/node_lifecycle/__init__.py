"""The node-lifecycle controller: node health from heartbeats, taints, pods of lost nodes."""
