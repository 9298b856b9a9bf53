"""The endpointslice controller: EndpointSlices per selector Service, from its pods."""
