"""Experiments as data: RunConfig (core/config.py), one Section per report section
(experiments/sections.py), scales as PROFILES (experiments/profiles.py), the policy that turns them and
the user's options (or a stamp, experiments/stamps.py) into resolved configs and evaluations
(experiments/resolve.py), and the run matrix (experiments/matrix.py) from which experiments/make.py
writes the Makefile's rules and experiments/costs.py prices `make plan`."""
from core.config import RunConfig
from experiments.profiles import PROFILES, SCALE_FIELDS, Profile
from experiments.resolve import OPTIMIZERS, check_names, resolve, resolve_evaluation, resolve_training, transfer_source
from experiments.sections import PRESETS, QUESTIONS, SECTIONS, Question, Section

__all__ = ["OPTIMIZERS", "PRESETS", "PROFILES", "QUESTIONS", "SCALE_FIELDS", "SECTIONS", "Profile", "Question",
           "RunConfig", "Section", "check_names", "resolve", "resolve_evaluation", "resolve_training",
           "transfer_source"]
