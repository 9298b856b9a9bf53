"""NodeSelector matching: the one implementation behind the scheduler's node affinity and a
PersistentVolume's nodeAffinity (upstream's component-helpers nodeaffinity).

A NodeSelector's terms are ORed; a term's matchExpressions (against the node's labels) and
matchFields (against `metadata.name`, the only field upstream supports) are ANDed; an empty
term matches nothing. Gt and Lt compare integers and never match a value that is not one.
Pure functions.
"""

from __future__ import annotations


def requirement_matches(expr: dict, values: dict) -> bool:
    """One NodeSelectorRequirement against a map (node labels, or {"metadata.name": name})."""
    key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
    has = key in values
    v = values.get(key)
    if op == "In":
        return has and v in vals
    if op == "NotIn":
        return not has or v not in vals
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and len(vals) == 1:
        try:
            a, b = int(v), int(vals[0])
        except (TypeError, ValueError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def term_matches(term: dict, node_name: str, labels: dict) -> bool:
    """Expressions and fields of one term are ANDed; an empty term matches nothing."""
    exprs, fexprs = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fexprs:
        return False
    fields = {"metadata.name": node_name}
    return all(requirement_matches(e, labels) for e in exprs) and all(
        requirement_matches(e, fields) for e in fexprs)


def selector_terms_match(terms, node_name: str, labels: dict) -> bool:
    """A NodeSelector: its terms are ORed."""
    return any(term_matches(t, node_name, labels) for t in terms or ())
