"""The endpoint controller: one Endpoints object per selector Service, from its pods."""
