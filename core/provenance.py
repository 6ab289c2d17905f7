"""Where a result came from: commit, library versions, device, host."""
from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("torch", "torchvision", "numpy", "kornia", "advertorch", "torchattacks",
             "pytorch-metric-learning", "scikit-learn", "umap-learn", "wandb", "typer")


def git_commit() -> str:
    """HEAD's hash, with '-dirty' when tracked files differ from it; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_model() -> str:
    """The processor's model name (/proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The device in words. On the CPU it names the processor, the vector instructions torch's kernels use
    (AVX512, AVX2, ...) and the thread count: each changes the order of floating-point sums, so the same seed on
    another processor or thread count trains a different model (at the quick profile, several points apart)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"cpu ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()} kernels, "
            f"{torch.get_num_threads()} threads)")


def provenance(device: torch.device, wall_seconds: float) -> dict:
    return {
        "git_commit": git_commit(),
        "versions": versions(),
        "device": device_name(device),
        "hostname": socket.gethostname(),
        "argv": sys.argv,
        "wall_seconds": round(wall_seconds, 2),
        **({"peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)}
           if device.type == "cuda" else {}),
    }
