"""What a check found: the reports of verify, of an export and of archive files (values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_UNCOVERED_AGE", "Findings", "VerifyReport"]

#: Seconds an entry may wait for a signed checkpoint before verify calls it a problem: three
#: times the longest interval between checkpoints of an open vault (one a minute when idle,
#: within a fraction of a second under load), so only a tail nobody signed fails.
MAX_UNCOVERED_AGE = 180.0


@dataclass
class Findings:
    """What a check of files (an export, archives) or a job found: every problem (``ok`` when none).

    A subclass adds its counts and returns them from :meth:`_counts` for :meth:`to_dict`.
    """

    problems: list[str] = field(default_factory=list, kw_only=True)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self._counts(), "problems": self.problems}

    def _counts(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class VerifyReport:
    """What verify checked and the first problem found (``ok`` when there is none)."""

    entries: int = 0
    checkpoints: int = 0
    problem: str | None = None
    seq: int | None = None
    trusted: dict[str, Any] | None = field(default=None)
    #: Entries past the newest signed checkpoint (a fresh tail, or checkpoints that went missing).
    uncovered: int = 0
    #: The size of the newest signed checkpoint (the vault's own or the trusted one).
    covered: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> VerifyReport:
        """Read the JSON form of :meth:`to_dict`."""
        return cls(
            document["entries"], document["checkpoints"], document["problem"], document["seq"],
            document["trusted_checkpoint"], document.get("uncovered", 0),
            document.get("covered", 0),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "problem": self.problem,
            "seq": self.seq,
            "trusted_checkpoint": self.trusted,
            "uncovered": self.uncovered,
            "covered": self.covered,
        }
