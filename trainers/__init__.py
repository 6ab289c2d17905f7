"""The one training loop (trainers/loop.py) and its adversarial-training hook (trainers/adversarial.py)."""
from trainers.loop import run

__all__ = ["run"]
