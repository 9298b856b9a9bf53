"""The one-sentence answer to "why is my claim Pending?".

`MatchCounts` holds, for one claim, how many available volumes were considered and why each
was refused (categories in the order a reader checks them: class, volume mode, access modes,
size, selector, node). `explain_pending(cause, counts)` joins the cause with those counts:

    "no persistent volumes available for this claim and no storage class is set"
    "no persistent volumes available for this claim and no storage class is set; 12 volumes
     considered: 7 too small, 4 wrong access modes, 1 other class"

The sentence goes into the claim's Bindable condition (kubectl describe shows it) and into the
event; the EventRecorder aggregates identical repeats into one event with a count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# the categories, in the order the sentence lists them
ORDER = ("too small", "wrong access modes", "other class", "wrong volume mode",
         "not matching the selector", "node affinity mismatch")


@dataclass
class MatchCounts:
    considered: int = 0
    refused: dict = field(default_factory=dict)     # category -> count

    def add(self, category: str, n: int = 1) -> None:
        if n:
            self.refused[category] = self.refused.get(category, 0) + n

    def sentence(self) -> str:
        """'12 volumes considered: 7 too small, 4 wrong access modes, 1 other class'."""
        n = self.considered
        head = f"{n} volume{'' if n == 1 else 's'} considered"
        parts = [f"{self.refused[c]} {c}" for c in ORDER if self.refused.get(c)]
        parts += [f"{v} {c}" for c, v in sorted(self.refused.items()) if c not in ORDER and v]
        return f"{head}: {', '.join(parts)}" if parts else head


def explain_pending(cause: str, counts: MatchCounts | None) -> str:
    """The cause, then the counts when any volume was looked at."""
    if counts is None or not counts.considered:
        return cause
    return f"{cause}; {counts.sentence()}"
