"""A fork server for `make demo`: every command the demo runs starts as a fork of one Python process that has
already imported torch, torchvision, W&B, scikit-learn and matplotlib, instead of paying those 6-10 s
again in each of about 40 processes.

    python runs/zygote.py serve -- COMMAND ...   # run COMMAND (the inner make) with a server behind it
    python runs/zygote.py -- cli.py train ...    # what Make's $(RUN) becomes while TRUSTLAB_ZYGOTE is set

Make stays the orchestrator (stamps, -j, .DELETE_ON_ERROR); only the start of each command changes. The client
(stdlib only, so it starts in a few tens of milliseconds) sends its argv, working directory, environment and
its stdin, stdout and stderr to the server. The server forks a handler, which forks the worker that runs the
command exactly as `python ARGV` would (a fresh process image of the same code: nothing carries over from one
command to the next), waits for it and sends back its exit status; a worker killed by a signal exits the client
as the shell reports it (128 + signal). SIGINT and SIGTERM sent to the client are passed on to the worker, so
Ctrl-C and Make's interrupts reach the training loop's handlers as before. Without a server (none was started,
or it is gone) the client runs the command itself, in place: the same behaviour, only slower.

The server forks before any thread or CUDA context exists (it only imports), so the children may use both.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

ENV = "TRUSTLAB_ZYGOTE"  # the socket's path, set by `serve` for the command it runs
# not umap (nor numba): numba reads NUMBA_CACHE_DIR once, at import, and the UMAP command sets it (eval/umap_run.py)
# before importing umap, so that umap's compiled functions load from the cache; imported by the server, they were
# compiled again in every UMAP command (25 s instead of 4 in the demo)
PRELOAD = ("torch", "torchvision", "torch.optim", "torch._dynamo", "wandb", "sklearn.neighbors",
           "sklearn.model_selection", "scipy.stats", "matplotlib.pyplot", "kornia", "pandas", "seaborn",
           "cli", "trainers.loop", "eval.attack_run", "eval.knn_run", "eval.umap_run", "report.run_figures",
           # what the commands still imported after the fork (python -X importtime): wandb.init's own lazy
           # imports (its public API, launch, artifacts, its OpenTelemetry exporters; requests' idna alone is
           # 0.4 s), about 0.75 of its 1.25 s in every W&B command; then the attacks and the PNG writer. A name
           # another wandb version lacks is skipped (preload ignores failures)
           "requests", "yaml", "wandb.apis.public", "wandb.sdk.launch", "wandb.sdk.artifacts.artifact",
           "opentelemetry.exporter.otlp.proto.http.metric_exporter",
           "opentelemetry.exporter.otlp.proto.http._log_exporter", "opentelemetry.sdk.resources",
           "attacks.gradient", "attacks.noise", "tqdm.auto", "matplotlib.backends.backend_agg")


def _send(sock: socket.socket, obj, fds=()) -> None:
    data = json.dumps(obj).encode()
    socket.send_fds(sock, [struct.pack("!I", len(data)) + data], list(fds)) if fds else \
        sock.sendall(struct.pack("!I", len(data)) + data)


def _recv(sock: socket.socket, with_fds: int = 0):
    """One message (and with_fds file descriptors); None at end of stream."""
    head, fds, _, _ = socket.recv_fds(sock, 4, with_fds) if with_fds else (sock.recv(4), [], 0, None)
    if len(head) < 4:
        return None, fds
    size, data = struct.unpack("!I", head)[0], b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None, fds
        data += chunk
    return json.loads(data), fds


# ---------------------------------------------------------------- client

def client(argv: list[str]) -> int:
    """Run argv (python's arguments: a script or -m module, then its own) through the server; in place without one."""
    path = os.environ.get(ENV)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not path:
            raise OSError("no server")
        sock.connect(path)
    except OSError:
        sock.close()
        os.execv(sys.executable, [sys.executable, *argv])  # no server: the command itself, in this process
    _send(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, fds=(0, 1, 2))
    hello, _ = _recv(sock)
    if hello is None:
        print("error: the demo's fork server closed the connection before starting the command", file=sys.stderr)
        return 1
    pid = hello["pid"]

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            done, _ = _recv(sock)
            break
        except InterruptedError:
            continue
    if done is None:
        print("error: the demo's fork server stopped while the command ran", file=sys.stderr)
        return 1
    return int(done["status"])


# ---------------------------------------------------------------- server

def _run_worker(request: dict, fds: list[int]) -> None:
    """In the forked worker: become `python ARGV` with the client's stdio, directory and environment; never returns."""
    import atexit

    # the exit handlers registered at import time belong to the server (W&B's media folder, made once at import
    # and shared by every worker, is removed by one of them): a worker runs only the ones its command registers
    atexit._clear()
    # its own process group: a Ctrl-C at the terminal reaches the client (in Make's group), which passes it on
    # once; in the server's group the command would get it twice, and a second SIGINT means "stop at once"
    os.setpgid(0, 0)
    code = 1
    try:
        for i, fd in enumerate(fds[:3]):
            os.dup2(fd, i)
        for fd in fds:
            os.close(fd)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ENV, None)  # a command it starts runs its own commands plainly
        if "torch" in sys.modules and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        import runpy

        argv = request["argv"]
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, int | None):
            print(exit_.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - the worker must report any failure as python would, then exit
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # W&B and friends, as at a normal interpreter exit
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing left to say
                pass
        os._exit(code)


def _handle(conn: socket.socket) -> None:
    """In the forked handler: read the request, fork the worker, report its pid, then its exit status. It ignores
    SIGINT and SIGTERM (a Ctrl-C reaches the whole group): it only waits, and the client passes signals on."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    request, fds = _recv(conn, with_fds=3)
    if request is None:
        os._exit(1)
    worker = os.fork()
    if worker == 0:
        conn.close()
        _run_worker(request, fds)
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": worker})
    _, status = os.waitpid(worker, 0)
    code = os.waitstatus_to_exitcode(status)
    _send(conn, {"status": code if code >= 0 else 128 - code})
    os._exit(0)


def serve(command: list[str]) -> int:
    """Listen, run `command` with TRUSTLAB_ZYGOTE set, fork a handler per connection until the command ends."""
    import importlib
    import selectors
    import shutil
    import subprocess
    import tempfile

    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not runs/
    folder = tempfile.mkdtemp(prefix="trustlab-zygote-")
    path = os.path.join(folder, "socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    proc = subprocess.Popen(command, env={**os.environ, ENV: path})  # connections queue while we import
    def preload(name: str) -> None:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional: a module that fails to import is loaded by its command
            pass
        sys.stdout.flush(), sys.stderr.flush()

    try:
        preload(PRELOAD[0])  # torch, which every command needs; the rest between connections, while the
        pending = list(PRELOAD[1:])  # first commands (forked without them) import what they use themselves
        sel, handlers = selectors.DefaultSelector(), set()
        sel.register(listener, selectors.EVENT_READ)
        while proc.poll() is None:
            handlers -= {pid for pid in handlers if os.waitpid(pid, os.WNOHANG)[0]}  # reap the finished ones
            if not sel.select(timeout=0 if pending else 0.2):
                if pending:
                    preload(pending.pop(0))
                continue
            conn, _ = listener.accept()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _handle(conn)
            handlers.add(pid)
            conn.close()
        return proc.returncode
    except KeyboardInterrupt:
        proc.wait()
        return 130
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    serving = argv[:1] == ["serve"]
    rest = argv[1:] if serving else argv
    rest = rest[1:] if rest[:1] == ["--"] else rest
    if not rest:
        print("usage: zygote.py serve -- COMMAND ...  or  zygote.py -- SCRIPT|-m MODULE ARGS ...", file=sys.stderr)
        return 2
    return serve(rest) if serving else client(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
