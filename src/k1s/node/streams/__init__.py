"""The node's stream server: exec, attach, port-forward and logs of the containers this node
runs, served to the API server (which proxies kubectl's requests here) on loopback."""
