"""The grade of one submission: per-question points, what failed and why, notes, time taken.

``GradeReport.format()`` is what ``python -m course_utils grade`` prints; ``to_dict()`` is its
``--json`` (``seconds`` is the wall time of the whole grading, start-up included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class QuestionScore:
    name: str
    score: float | None  # None for a question marked by hand
    possible: float
    manual: bool = False
    failed: list[dict] = field(default_factory=list)  # {"test", "hidden", "message"}
    answer: str | None = None  # the text of an open question's answer


@dataclass
class GradeReport:
    """The grade of one submission: per-question points, the total, and what went wrong."""

    submission: str
    exercise: str
    status: str  # "graded", or "stopped" when the run was cut short (scores zero)
    questions: list[QuestionScore]
    notes: list[str]
    seconds: float  # wall time of the whole grading, start-up included
    phases: dict = field(default_factory=dict)  # seconds per phase inside the worker

    @property
    def score(self) -> float:
        return round(sum(q.score or 0.0 for q in self.questions if not q.manual), 4)

    @property
    def possible(self) -> float:
        return round(sum(q.possible for q in self.questions if not q.manual), 4)

    @property
    def manual_possible(self) -> float:
        return round(sum(q.possible for q in self.questions if q.manual), 4)

    def to_dict(self) -> dict:
        return {"submission": self.submission, "exercise": self.exercise, "status": self.status,
                "score": self.score, "possible": self.possible, "manual_possible": self.manual_possible,
                "questions": [{**asdict(q), "score": None if q.score is None else round(q.score, 4)}
                              for q in self.questions],
                "notes": self.notes,
                "seconds": round(self.seconds, 1), "phases": self.phases}

    def format(self) -> str:
        """The report as text, one line per question, then notes."""
        w = max([5] + [len(q.name) for q in self.questions])  # width of the name column
        lines = [f"{self.exercise} · {self.submission}"]
        for q in self.questions:
            if q.manual:
                answer = "no answer" if not q.answer or q.answer.startswith("_Type your answer here") else \
                    f'{len(q.answer.split())} words: "{shorten(q.answer, 70)}"'
                lines.append(f"  {q.name:<{w}} {'-':>6} / {num(q.possible):<4} marked by hand ({answer})")
                continue
            verdict = "passed" if not q.failed else f"failed {len(q.failed)} test(s)"
            lines.append(f"  {q.name:<{w}} {num(q.score or 0):>6} / {num(q.possible):<4} {verdict}")
            for fail in q.failed:
                hidden = " (hidden)" if fail["hidden"] else ""
                lines.append(f"{'':>{w + 18}}{fail['test']}{hidden}: {fail['message']}")
        manual = f", plus {num(self.manual_possible)} marked by hand" if self.manual_possible else ""
        stopped = "" if self.status == "graded" else f" ({self.status})"
        lines.append(f"  {'total':<{w}} {num(self.score):>6} / {num(self.possible)} auto-graded points{manual}{stopped}")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"  graded in {self.seconds:.1f} s")
        return "\n".join(lines)


def num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
