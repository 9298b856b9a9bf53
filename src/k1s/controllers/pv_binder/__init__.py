"""The PersistentVolume binder (upstream's persistentvolume-binder controller): binds claims to
volumes, keeps both objects' phases, hands unmatched claims to provisioners, and explains why a
claim is still Pending. planner.py decides, index.py finds volumes, controller.py acts."""
