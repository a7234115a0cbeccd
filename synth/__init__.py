"""synth: traceable synthesis of citizens' contributions.

from synth import load_contributions, synthesize
result = synthesize(load_contributions("comments.csv"))
"""

from synth.config import SynthConfig
from synth.formats import ColumnMap, InputError, load_contributions
from synth.pipeline import RunResult
from synth.pipeline import run as synthesize
from synth.schema import Contribution, MinorityView, Synthesis, Theme

__all__ = [
    "ColumnMap",
    "Contribution",
    "InputError",
    "MinorityView",
    "RunResult",
    "SynthConfig",
    "Synthesis",
    "Theme",
    "load_contributions",
    "synthesize",
]
