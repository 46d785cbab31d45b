"""vLLM engine options (eval.vllm / serve.vllm): typed, and handed to every engine tunebot starts, checked up to the
command line and keyword arguments (vLLM's own parser reads them in the `vllm` group; no engine starts)."""

from __future__ import annotations

import pytest

from eval.vllm_backend import engine_options
from serve.engine_vllm import vllm_command
from tunebot.config import ConfigError, parse_config

BIG = {"tensor_parallel_size": 4, "pipeline_parallel_size": 2, "gpu_memory_utilization": 0.85, "quantization": "fp8",
       "max_num_seqs": 128, "enable_prefix_caching": False}


def _config(section: str, options: dict) -> object:
    return parse_config({"name": "x", "data": {"sources": [{"path": "faq.csv"}]}, section: {"vllm": options}})


def test_serve_passes_every_set_option_to_the_server_command_line() -> None:
    flags = _config("serve", BIG).serve.vllm.as_flags()
    command = vllm_command("/models/llama-70b", "tuned", 9000, 4096, cpu=False, flags=flags)
    assert command[command.index("--dtype"):] == ["--dtype", "bfloat16", "--tensor-parallel-size", "4",
                                                  "--pipeline-parallel-size", "2", "--gpu-memory-utilization", "0.85",
                                                  "--quantization", "fp8", "--max-num-seqs", "128",
                                                  "--no-enable-prefix-caching"]
    assert _config("serve", {"enable_prefix_caching": True}).serve.vllm.as_flags() == ["--enable-prefix-caching"]
    unset = vllm_command("/m", "base", 9000, 2048, cpu=True, flags=_config("serve", {}).serve.vllm.as_flags())
    assert unset[-3:] == ["--dtype", "float32", "--enforce-eager"], "nothing set: vLLM's defaults, as before"


def test_eval_passes_every_set_option_to_the_offline_engine() -> None:
    cfg = _config("eval", {**BIG, "max_model_len": 4096}).eval.vllm
    job = {"model": "/m", "lora": None, "dtype": cfg.dtype, "max_model_len": cfg.max_model_len,
           "enforce_eager": False, "seed": 0, "engine": cfg.as_kwargs()}
    assert engine_options(job, cuda=True) == {"model": "/m", "dtype": "bfloat16", "max_model_len": 4096,
                                              "enforce_eager": False, "seed": 0, **BIG}
    assert "tensor_parallel_size" not in _config("eval", {}).eval.vllm.as_kwargs()


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="serve.vllm.tensor_parallel_size"):
        _config("serve", {"tensor_parallel_size": 0})
    with pytest.raises(ConfigError, match="eval.vllm.tensor_paralel_size"):
        _config("eval", {"tensor_paralel_size": 4})


@pytest.mark.vllm
def test_vllm_reads_the_options_as_tunebot_writes_them(default_model_dir) -> None:
    pytest.importorskip("vllm")
    from vllm.engine.arg_utils import AsyncEngineArgs, EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = AsyncEngineArgs.add_cli_args(FlexibleArgumentParser())
    flags = _config("serve", BIG).serve.vllm.as_flags()
    parsed = EngineArgs.from_cli_args(parser.parse_args(["--model", str(default_model_dir), *flags]))
    assert {name: getattr(parsed, name) for name in BIG} == BIG
    assert set(_config("eval", BIG).eval.vllm.as_kwargs()) <= set(EngineArgs.__dataclass_fields__)
