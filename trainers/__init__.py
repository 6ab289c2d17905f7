from trainers.loop import run

__all__ = ["run"]
