"""Online growth of k1s.io/local volumes when a bound claim asks for more."""
