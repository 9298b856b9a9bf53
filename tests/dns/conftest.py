"""The DNS tests import their object builders (dns_objects) and the controller test helpers
(tests/controllers/ctrl_util.py) by module name."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.join(os.path.dirname(HERE), "controllers")):
    if p not in sys.path:
        sys.path.insert(0, p)
