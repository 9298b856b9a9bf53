"""The StatefulSet controller (upstream pkg/controller/statefulset): stable pod identities and
claims, OrderedReady and Parallel scaling, rolling updates through ControllerRevisions, claim
retention, and the status kubectl rollout reads. planner.py decides, controller.py acts."""
