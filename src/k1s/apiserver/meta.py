"""Small metadata helpers the API server shares: timestamps, uids, generated names, keys."""

from __future__ import annotations

import random
import time
import uuid

# upstream's utilrand alphabet: no vowels (no accidental words), no ambiguous characters
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LEN = 5


def now_rfc3339(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    # names are at most 63 characters for most kinds; upstream trims the prefix to fit
    max_prefix = 63 - GENERATED_SUFFIX_LEN
    if len(prefix) > max_prefix:
        prefix = prefix[:max_prefix]
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(GENERATED_SUFFIX_LEN))


def object_key(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))
