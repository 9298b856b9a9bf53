"""Mirrors the Endpoints of selector-less Services into EndpointSlices (upstream endpointslicemirroring)."""
