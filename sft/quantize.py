"""K-quant GGUF files (q4_k_m) made by llama.cpp's own quantizer, through llama-cpp-python.

    pip install 'tunebot[gguf]'      # llama-cpp-python: a source build, ~5 min on 2 cores
    tunebot export runs/acme-demo --quant q4_k_m

gguf-py has no K-quant quantizer, so q4_k_m is llama.cpp's `llama_model_quantize` applied to the
f16 file sft/gguf_write.py writes: the same code as the `llama-quantize` tool, with its choice of
mixed types per tensor (rows that do not fill 256-value blocks, like SmolLM2's 576-wide ones, get
llama.cpp's fallback types).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sft.gguf_write import ExportError

# llama.cpp's file types (llama.h, enum llama_ftype) for the quants made here.
FTYPES = {"q4_k_m": 15}
INSTALL_HINT = ("pip install 'tunebot[gguf]' (llama-cpp-python, built from source, ~5 min on 2 cores), or make it "
                "from the f16 export with llama.cpp's tool: llama-quantize NAME.f16.gguf NAME.q4_k_m.gguf Q4_K_M")


def llama_cpp_module() -> Any:
    """The llama_cpp package, or None when llama-cpp-python is not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    return llama_cpp


_SILENT: list[Any] = []  # the ctypes log callback must outlive the call that installs it


def _quiet(llama_cpp: Any) -> None:
    """Turns off llama.cpp's log (a line per tensor while quantizing); errors still come back as a status."""
    if not _SILENT:
        _SILENT.append(llama_cpp.llama_log_callback(lambda level, text, user_data: None))
    llama_cpp.llama_log_set(_SILENT[0], None)


def write_kquant(model_dir: Path, out: Path, quant: str) -> Path:
    """Writes `out`, the merged model in `model_dir` as a K-quant GGUF: gguf-py's f16 file, then llama.cpp's
    quantizer."""
    from sft.gguf_write import write_gguf

    f16 = out.with_name(out.name + ".f16.partial")
    try:
        return quantize_gguf(write_gguf(model_dir, f16, "f16"), out, quant)
    finally:
        f16.unlink(missing_ok=True)


def quantize_gguf(source: Path, out: Path, quant: str, threads: int | None = None) -> Path:
    """Writes `out`, the `quant` version of the f16 GGUF `source`, with llama.cpp's quantizer (atomic rename)."""
    import ctypes
    import os

    llama_cpp = llama_cpp_module()
    if llama_cpp is None:
        raise ExportError(f"--quant {quant} needs llama.cpp's quantizer: {INSTALL_HINT}")
    _quiet(llama_cpp)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.nthread = threads or os.cpu_count() or 1
    partial = out.with_name(out.name + ".partial")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if status != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ExportError(f"{source}: llama.cpp's quantizer failed (status {status}) making {quant}")
    partial.replace(out)
    return out
