"""The in-process transformers engine: base and tuned loaded once, one generation at a time, cancellable.

    tunebot serve runs/acme-demo --engine transformers

Used where vLLM is not installed, and by the tests. Prompts are rendered exactly as in training
and eval (tunebot.prompts.render_prompt with the model's own chat template). One generation runs
at a time (`slots`, taken by the gateway; torch uses every core for it) in a thread of its own;
its token ids come back to the event loop through a queue, so a waiting or streaming request
holds no thread. A generation stops at once when its `cancel` event is set (the client went
away, the deadline passed, a stop sequence was seen, the server is shutting down): a stopping
criterion checks it after every token. A failure inside generate ends the request with an
EngineError instead of a hang. Text is detokenized incrementally and an incomplete UTF-8
character at the end of the text so far is held back until its next token arrives, so a
streamed Japanese answer never shows U+FFFD where a token boundary split a character.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebot.prompts import Message, render_prompt

REPLACEMENT = "\ufffd"


class EngineError(RuntimeError):
    """Generation failed inside the engine (the request ends with a 5xx; the server keeps serving)."""


@dataclass
class Delta:
    """A piece of an answer; the last one of a generation has its finish reason and token counts."""

    text: str
    finish_reason: str | None = None  # "stop" or "length" on the last piece
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Sampling:
    """Decoding settings of one request."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)


class IncrementalText:
    """Turns token ids into text pieces as they arrive, holding back an incomplete character.

    The ids since the last clean cut are decoded together (vLLM's prefix/read offsets), so a
    byte-level BPE token that carries half of 「ン」 waits for the token with the other half.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.ids, self.prefix, self.read = tokenizer, [], 0, 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, ids: list[int]) -> str:
        """Adds generated ids; returns the text they complete (may be empty)."""
        self.ids.extend(ids)
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if after.endswith(REPLACEMENT) or len(after) <= len(before):
            return ""
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]

    def finish(self) -> str:
        """The text still held back when generation ended (a character left incomplete is dropped)."""
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):].rstrip(REPLACEMENT)


def _feed_class() -> type:
    from transformers.generation.streamers import BaseStreamer

    class TokenFeed(BaseStreamer):
        """transformers' streamer interface: forwards generated ids (not the prompt) to the event loop."""

        def __init__(self, post: Any) -> None:
            self.post, self.prompt_seen, self.count = post, False, 0

        def put(self, value: Any) -> None:
            if not self.prompt_seen:  # generate() first puts the prompt
                self.prompt_seen = True
                return
            ids = value.reshape(-1).tolist()
            self.count += len(ids)
            self.post(("ids", ids))

        def end(self) -> None:
            """The worker posts the end itself (after generate returns)."""

    return TokenFeed


def _stop_when(cancel: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])


class TransformersEngine:
    """Serves `base` and `tuned` (base + adapter, or the whole tuned model) from this process."""

    kind = "transformers"

    def __init__(self, model_path: str, adapter_dir: Path | None, max_model_len: int = 2048) -> None:
        from tunebot.models import load_adapted, load_causal_lm, load_tokenizer

        self.tokenizer = load_tokenizer(model_path)
        self.models: dict[str, Any] = {"base": load_causal_lm(model_path)}
        if adapter_dir is not None and Path(adapter_dir).is_dir():
            self.models["tuned"] = load_adapted(model_path, Path(adapter_dir))
        for model in self.models.values():
            model.eval()
        self.max_model_len = max_model_len
        self.concurrency = 1  # one generation at a time; the gateway waits on `slots`, not in a thread
        self.slots = asyncio.Semaphore(self.concurrency)
        self._lock = threading.Lock()
        self._running: set[threading.Event] = set()
        # what the last generations did: {"tokens": generated, "cancelled": stopped by `cancel`}
        self.history: deque[dict[str, Any]] = deque(maxlen=64)

    def names(self) -> list[str]:
        """The model names this engine answers to."""
        return list(self.models)

    def healthy(self) -> bool:
        """In-process: healthy as long as the process runs."""
        return True

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of the rendered prompt (no extra BOS: the template has its own tokens)."""
        return self.tokenizer(render_prompt(self.tokenizer, messages), add_special_tokens=False)["input_ids"]

    def _generate_kwargs(self, ids: list[int], sampling: Sampling) -> dict[str, Any]:
        import torch

        if sampling.seed is not None:
            torch.manual_seed(sampling.seed % 2**64)  # an int64 seed, as torch's generator takes it
        decoding = ({"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
                    if sampling.temperature > 0
                        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        return {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                "max_new_tokens": sampling.max_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": self.tokenizer.eos_token_id, **decoding}

    def _run(self, model: str, ids: list[int], sampling: Sampling, cancel: threading.Event, post: Any) -> None:
        """The worker thread: one generate() call, its ids and its end (or error) posted to the loop."""
        import torch

        try:
            with self._lock, torch.inference_mode():
                if not cancel.is_set():
                    feed = _feed_class()(post)
                    self.models[model].generate(**self._generate_kwargs(ids, sampling), streamer=feed,
                                                stopping_criteria=_stop_when(cancel))
                    self.history.append({"tokens": feed.count, "cancelled": cancel.is_set()})
            post(("end", None))
        except BaseException as error:  # noqa: BLE001 - every failure must reach the waiting request
            post(("error", error))

    async def stream(self, model: str, messages: list[Message], sampling: Sampling,
                     cancel: threading.Event | None = None) -> AsyncIterator[Delta]:
        """Yields the answer in pieces as it is generated; the last Delta has the finish reason and counts.

        Closing the iterator (the client went away) or setting `cancel` stops the generation."""
        cancel = cancel or threading.Event()
        ids = await asyncio.to_thread(self.prompt_ids, messages)
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()

        def post(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (shutdown): nobody is waiting
                cancel.set()

        self._running.add(cancel)
        threading.Thread(target=self._run, args=(model, ids, sampling, cancel, post), daemon=True).start()
        text, count, last = IncrementalText(self.tokenizer), 0, None
        try:
            while (item := await queue.get())[0] == "ids":
                count, last = count + len(item[1]), item[1][-1]
                if piece := text.add(item[1]):
                    yield Delta(piece)
            if item[0] == "error":
                raise EngineError(f"generation failed: {type(item[1]).__name__}: {item[1]}") from item[1]
            if tail := text.finish():
                yield Delta(tail)
            finish = "length" if count >= sampling.max_tokens and last != self.tokenizer.eos_token_id else "stop"
            yield Delta("", finish, len(ids), count)
        finally:
            cancel.set()
            self._running.discard(cancel)

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Delta:
        """Answers one conversation whole: the text, finish reason and counts in one Delta."""
        return await collect(self.stream(model, messages, sampling))

    async def close(self) -> None:
        """Stops every running generation."""
        for cancel in list(self._running):
            cancel.set()


async def collect(pieces: AsyncIterator[Delta]) -> Delta:
    """Joins a stream of Deltas into one (text stripped, as a whole answer is shown)."""
    parts, last = [], Delta("")
    async for delta in pieces:
        parts.append(delta.text)
        last = delta
    return Delta("".join(parts).strip(), last.finish_reason or "stop", last.prompt_tokens, last.completion_tokens)
