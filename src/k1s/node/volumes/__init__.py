"""Node-side volumes of the local provisioner: ext4 images on loop devices (real capacity), a
plain-directory fallback, and the uid-only path rules both use."""
