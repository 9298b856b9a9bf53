"""The garbage collector: deletes objects whose owners are gone and carries out Foreground and
Orphan deletion propagation (graph.py keeps the ownership graph, planner.py decides, controller.py
acts)."""
