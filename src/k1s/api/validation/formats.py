"""String formats Kubernetes validates, with upstream's exact explanation texts.

Each `is_*` function returns the list of reasons a value is malformed (empty when it is fine),
worded as apimachinery's `util/validation` and `api/validate/content` word them, because those
texts reach users verbatim inside field errors (`metadata.name: Invalid value: "Web": a
lowercase RFC 1123 subdomain must consist of ...`). Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, NamedTuple

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + LABEL_KEY_FMT + ")?"
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
LABEL_KEY_NAME_MAX = 63

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.', and must start and end with an "
                          "alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                      "'-', start with an alphabetic character, and end with an alphanumeric "
                      "character")
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                  "end with an alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character")
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_ENV_VAR_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, "
                     "digits, '_', '-', or '.', and must not start with a digit")
_HTTP_HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"

# Go's regexp.MatchString with ^...$ anchors: fullmatch is the Python equivalent.
_dns1123_label = re.compile(DNS1123_LABEL_FMT)
_dns1123_subdomain = re.compile(DNS1123_SUBDOMAIN_FMT)
_dns1035_label = re.compile(DNS1035_LABEL_FMT)
_label_key = re.compile(LABEL_KEY_FMT)
_label_value = re.compile(LABEL_VALUE_FMT)
_config_map_key = re.compile(CONFIG_MAP_KEY_FMT)
_env_var_name = re.compile(ENV_VAR_NAME_FMT)
_http_header = re.compile(HTTP_HEADER_NAME_FMT)
_port_name_charset = re.compile("[-a-z0-9]+")


def _blen(s: str) -> int:
    # Go's len() counts bytes, and upstream's messages say "bytes".
    return len(s.encode("utf-8", "surrogatepass"))


def max_len_error(n: int) -> str:
    return f"must be no more than {n} bytes"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # Go builds "'a', or 'b', " (each example followed by ", ", joined by " or ").
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


EMPTY_ERROR = "must be non-empty"


class Wording(NamedTuple):
    """How length limits and the qualified-name lead are worded: the two differ by caller."""

    length: Callable[[str], int]
    too_long: Callable[[int], str]
    qualified_name_lead: str


# Object validation (api/validate/content): byte counts, "a valid label key".
CONTENT = Wording(_blen, max_len_error, "a valid label key")
# labels.Parse answers in util/validation's older wording: character counts, "a qualified name".
LABELS = Wording(len, lambda n: f"must be no more than {n} characters", "a qualified name")


def _limited_match(value: str, limit: int, pattern: re.Pattern[str], msg: str, fmt: str,
                   examples: tuple[str, ...], wording: "Wording | None" = None) -> list[str]:
    # The common rule: at most `limit` long, and matching `pattern` (explained by `msg`).
    w = wording or CONTENT
    errs = []
    if w.length(value) > limit:
        errs.append(w.too_long(limit))
    if not pattern.fullmatch(value):
        errs.append(regex_error(msg, fmt, *examples))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if _blen(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _dns1123_label.fullmatch(value):
        if _dns1123_subdomain.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str, wording: "Wording | None" = None) -> list[str]:
    return _limited_match(value, DNS1123_SUBDOMAIN_MAX, _dns1123_subdomain,
                          _DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, ("example.com",), wording)


def is_dns1035_label(value: str) -> list[str]:
    return _limited_match(value, DNS1035_LABEL_MAX, _dns1035_label, _DNS1035_LABEL_MSG,
                          DNS1035_LABEL_FMT, ("my-name", "abc-123"))


def is_qualified_name(value: str, wording: "Wording | None" = None) -> list[str]:
    """A label key / qualified name: optional DNS-subdomain prefix, '/', then a name part."""
    w = wording or CONTENT
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix, w))
    else:
        return [w.qualified_name_lead + " " + regex_error(_LABEL_KEY_MSG, LABEL_KEY_FMT,
                                                          "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif w.length(name) > LABEL_KEY_NAME_MAX:
        errs.append("name part " + w.too_long(LABEL_KEY_NAME_MAX))
    if not _label_key.fullmatch(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, LABEL_KEY_FMT, "MyName",
                                               "my.name", "123-abc"))
    return errs


def is_label_value(value: str, wording: "Wording | None" = None) -> list[str]:
    return _limited_match(value, LABEL_VALUE_MAX, _label_value, _LABEL_VALUE_MSG,
                          LABEL_VALUE_FMT, ("MyValue", "my_value", "12345"), wording)


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    return _limited_match(value, DNS1123_SUBDOMAIN_MAX, _config_map_key, _CONFIG_MAP_KEY_MSG,
                          CONFIG_MAP_KEY_FMT, ("key.name", "KEY_NAME", "key-name")) + \
        _chdir_prefix(value)


def is_env_var_name(value: str) -> list[str]:
    errs = []
    if not _env_var_name.fullmatch(value):
        errs.append(regex_error(_ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT, "my.env-name",
                                "MY_ENV.NAME", "MyEnvName1"))
    errs.extend(_chdir_prefix(value))
    return errs


def is_http_header_name(value: str) -> list[str]:
    if not _http_header.fullmatch(value):
        return [regex_error(_HTTP_HEADER_MSG, HTTP_HEADER_NAME_FMT, "X-Header-Name")]
    return []


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if _blen(port) > 15:
        errs.append(max_len_error(15))
    if not _port_name_charset.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def is_valid_ip(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [IP_ERROR]
    return []


def is_valid_cidr(value: str) -> list[str]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return []


def mask_trailing_dash(name: str) -> str:
    """generateName prefixes may end in '-': validate them as if a character followed."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


# Name functions, as upstream's ValidateNameFunc(name, prefix) -> []string.
def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(mask_trailing_dash(name) if prefix else name)
