"""Cluster DNS (the role CoreDNS plays in upstream clusters): the Kubernetes DNS specification
1.0.1 served from informer caches over UDP and TCP.

- records.py: the index of Services / EndpointSlices / namespaces and the answer to a question
  (pure);
- wire.py: DNS messages in and out (dnslib), truncation, EDNS, the response cache (pure);
- zone.py: keeps the index current from the shared informers;
- server.py: DNSServer, the sockets;
- service.py: the kube-dns Service object.
"""
