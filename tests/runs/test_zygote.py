"""The demo's fork server against plain `python`: the same output, exit codes, directory, environment and signals,
and the same numbers from a training run."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = [sys.executable, str(ROOT / "runs" / "zygote.py")]

PROBE = """
import os, signal, sys, time
mode = sys.argv[1]
if mode == "report":
    print(os.getcwd(), os.environ.get("PROBE_VALUE"), sys.argv[2:], "TRUSTLAB_ZYGOTE" in os.environ)
    print("to stderr", file=sys.stderr)
    sys.exit(3)
if mode == "signal":
    signal.signal(signal.SIGTERM, lambda *a: (print("got SIGTERM", flush=True), sys.exit(42)))
    print("ready", flush=True)
    open("ready", "w").close()  # the handler is in place: the test's script may signal now
    time.sleep(60)
if mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "crash":
    raise ValueError("boom")
"""


WAIT_READY = "for i in $(seq 1500); do [ -f ready ] && break; sleep 0.2; done; "  # up to 5 min on a loaded machine


def _serve(tmp_path, script: str) -> subprocess.CompletedProcess:
    """Run `script` (bash) with a fork server behind it; the client command is $Z."""
    env = {**os.environ, "Z": " ".join(ZYGOTE) + " --"}
    return subprocess.run(ZYGOTE + ["serve", "--", "bash", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_command_through_the_server_is_the_command_itself(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    plain = subprocess.run([sys.executable, "probe.py", "report", "a b"], cwd=tmp_path, capture_output=True,
                           text=True, env={**os.environ, "PROBE_VALUE": "41"})
    served = _serve(tmp_path, 'PROBE_VALUE=41 $Z probe.py report "a b"; echo "rc=$?"; '
                              '$Z probe.py crash; echo "rc=$?"; $Z probe.py kill; echo "rc=$?"')
    assert plain.returncode == 3
    lines = served.stdout.splitlines()
    assert lines[0] == plain.stdout.strip()  # same directory, environment and argv; the socket variable not passed on
    assert lines[1:] == ["rc=3", "rc=1", f"rc={128 + signal.SIGKILL}"]
    assert "to stderr" in served.stderr and "ValueError: boom" in served.stderr
    assert served.returncode == 0  # the served command's own status (the bash script's)


def test_signals_sent_to_the_client_reach_the_command(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    script = '$Z probe.py signal & pid=$!; ' + WAIT_READY + 'kill -TERM $pid; wait $pid; echo "rc=$?"'
    served = _serve(tmp_path, script)
    assert "ready" in served.stdout and "got SIGTERM" in served.stdout and "rc=42" in served.stdout, served.stderr


def test_a_ctrl_c_to_the_whole_group_reaches_the_command_once(tmp_path):
    """As at a terminal: SIGINT to every process of the group (server, bash, client); the command hears one."""
    (tmp_path / "count.py").write_text(
        "import signal, sys, time\nheard = []\n"
        "signal.signal(signal.SIGINT, lambda *a: heard.append(1))\n"
        "open('ready', 'w').close()\n"
        "for _ in range(600):\n    if heard:\n        break\n    time.sleep(0.1)\n"
        "time.sleep(2)\nprint('heard', len(heard), flush=True)\n")
    script = '$Z count.py & pid=$!; ' + WAIT_READY + 'kill -INT 0; wait $pid; echo "rc=$?"'
    env = {**os.environ, "Z": " ".join(ZYGOTE) + " --"}
    proc = subprocess.Popen(ZYGOTE + ["serve", "--", "bash", "-c", "trap '' INT; " + script], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = proc.communicate(timeout=120)
    assert "heard 1" in out and "rc=0" in out, out + err


def test_without_a_server_the_client_runs_the_command_in_place(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    for env in ({}, {"TRUSTLAB_ZYGOTE": str(tmp_path / "gone.sock")}):
        done = subprocess.run(ZYGOTE + ["--", "probe.py", "report", "x"], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, "PROBE_VALUE": "7", **env})
        assert done.returncode == 3 and done.stdout.split()[1:3] == ["7", "['x']"]


@pytest.mark.slow(cost=40)
def test_a_training_run_through_the_server_gives_the_same_numbers(tmp_path, data_root):
    """The demo's path (Make's commands forked from the server) against the plain one, on the same run."""
    args = ["dg-erm-digitnet", "PROFILE=smoke", f"DATA_ROOT={data_root}", f"CACHE_DIR={tmp_path / 'cache'}",
            "PRETRAINED=0", "WANDB=0", "DOWNLOAD=0"]
    plain = subprocess.run(["make", *args, f"RESULTS={tmp_path / 'plain'}"], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert plain.returncode == 0, plain.stderr[-2000:]
    served = subprocess.run(ZYGOTE + ["serve", "--", "make", *args, f"RESULTS={tmp_path / 'served'}"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert served.returncode == 0, served.stderr[-2000:]
    assert "runs/zygote.py -- cli.py train" in served.stdout  # Make's command went through the server
    a, b = (json.loads((tmp_path / r / "smoke" / "dg-erm-digitnet" / "metrics.json").read_text())
            for r in ("plain", "served"))
    assert a["metrics"] == b["metrics"] and a["correct"] == b["correct"] and a["history"][0]["train_loss"] == \
        b["history"][0]["train_loss"]
