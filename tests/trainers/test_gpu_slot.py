"""trainers/gpu_slot.py: each command takes the first free GPU slot (CUDA_VISIBLE_DEVICES), at most --per-gpu
commands share a GPU, and beyond the slots a command waits; a crashed command frees its slot."""
import subprocess
import sys
import time

from tests.conftest import ROOT

# a command that records its GPU and the time it held it
PROBE = "import os, sys, time; t = time.time(); time.sleep(float(sys.argv[1])); " \
        "print(os.environ['CUDA_VISIBLE_DEVICES'], t, time.time())"


def _start(locks, gpus, per_gpu, hold=1.5, code=PROBE):
    return subprocess.Popen([sys.executable, "-m", "trainers.gpu_slot", "--gpus", gpus, "--per-gpu", str(per_gpu),
                             "--locks", str(locks), "--", sys.executable, "-c", code, str(hold)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _spans(procs):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        gpu, start, end = stdout.split()
        out.append((gpu, float(start), float(end)))
    return out


def test_jobs_spread_over_the_gpus_and_queue_beyond_the_cap(tmp_path):
    procs = [_start(tmp_path, "0 1", 1) for _ in range(3)]
    spans = _spans(procs)
    assert sorted(g for g, _, _ in spans) in (["0", "0", "1"], ["0", "1", "1"])  # both GPUs used
    for gpu in ("0", "1"):  # never two at once on one GPU
        mine = sorted((s, e) for g, s, e in spans if g == gpu)
        assert all(a_end <= b_start + 0.05 for (_, a_end), (b_start, _) in zip(mine, mine[1:])), mine


def test_two_slots_per_gpu_run_side_by_side_and_a_crash_frees_its_slot(tmp_path):
    spans = _spans([_start(tmp_path, "3", 2) for _ in range(2)])
    assert [g for g, _, _ in spans] == ["3", "3"]
    (_, s1, e1), (_, s2, e2) = spans
    assert s1 < e2 and s2 < e1  # overlapping: two jobs on the GPU at once
    crash = _start(tmp_path, "3", 1, hold=0, code="import sys; sys.exit(7)")
    assert crash.wait(timeout=60) == 7  # its exit code passes through
    started = time.time()
    assert _spans([_start(tmp_path, "3", 1, hold=0)])[0][0] == "3" and time.time() - started < 30
