"""Run folders have one home: runs/folder.py reads and writes them (device choice, the data a config
trains and tests on, model.pt and checkpoint.pt, the transfer-source model). trainers/ and eval/
import it; it imports only loaders/, models/ and core/."""
from runs.folder import (CHECKPOINT, LOCK, METRICS, MODEL, RUN_FILES, finish_run, init_model, load_run, load_state, pick_device,
                         prepare_data, restore_checkpoint, save_checkpoint, source_model)

__all__ = ["CHECKPOINT", "LOCK", "METRICS", "MODEL", "RUN_FILES", "finish_run", "init_model", "load_run", "load_state", "pick_device",
           "prepare_data", "restore_checkpoint", "save_checkpoint", "source_model"]
