"""The namespace controller: deletes everything in a Terminating namespace, then removes its
`kubernetes` finalizer (planner.py decides, controller.py acts)."""
