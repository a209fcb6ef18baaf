"""Elderly-care detection: which detector watches elders living alone, and a call before a visit.

Most inactivity alerts are false (an elder out for the day, a quiet morning, a
stuck water meter), and each false one sends a social worker out.  This
policy picks the detector (``agents.sensors.elder_alerts``: ``water``,
``combined`` or ``off``) and adds an optional confirmation step: an automated
call to the elder first.  An answered call means the elder is fine and nobody
goes; an unanswered one sends the visit, ``call_minutes`` later than it would
have left.  An incapacitated elder cannot answer, so the call never stops a
rescue; it costs every rescue those minutes.
"""
import numpy as np

from policies.base import Policy


class ElderCareDetection(Policy):
    """The elderly detector's name and thresholds, and whether an automated call comes before a visit."""

    name = "elder_care"

    def __init__(self, detector="water", surprise=11.5, idle_kwh_per_hour=0.1, confirm_call=False,
                 call_minutes=5.0):
        self.detector = detector
        self.surprise = surprise
        self.idle_kwh_per_hour = idle_kwh_per_hour
        self.confirm_call = confirm_call
        self.call_minutes = call_minutes

    @classmethod
    def from_config(cls, p) -> "ElderCareDetection":
        """From the scenario's ``policies`` section (its ``elder_*`` keys)."""
        return cls(p.elder_detector, p.elder_surprise, p.elder_idle_kwh_per_hour, p.elder_confirm_call,
                   p.elder_call_minutes)

    def visits(self, answers: np.ndarray) -> np.ndarray:
        """Which alerts send a worker: all of them, or with the call only those whose call went unanswered."""
        answers = np.asarray(answers, np.bool_)
        return ~answers if self.confirm_call else np.ones(len(answers), np.bool_)

    def delay_minutes(self) -> float:
        """Minutes the call adds before a worker sets out."""
        return float(self.call_minutes) if self.confirm_call else 0.0
