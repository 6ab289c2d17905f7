"""Run folders have one home. runs/layout.py says where they live (torch-free); runs/folder.py reads and
writes them (device choice, the data a config trains and tests on, model.pt and checkpoint.pt, the
transfer-source model); runs/claim.py claims an evaluation's output files beside them (one writer, never over
a run's files or another evaluation's). trainers/ and eval/ import it; it imports only loaders/, models/ and core/.

The names of runs/folder.py are re-exported lazily, so that `import runs.layout` stays free of torch."""
_FOLDER = ("CHECKPOINT", "LOCK", "METRICS", "MODEL", "RUN_FILES", "finish_run", "init_model", "load_run", "load_state",
           "pick_device", "prepare_data", "restore_checkpoint", "save_checkpoint", "source_model")
__all__ = list(_FOLDER)


def __getattr__(name):
    if name in _FOLDER:
        from runs import folder
        return getattr(folder, name)
    raise AttributeError(f"module 'runs' has no attribute {name!r}")
