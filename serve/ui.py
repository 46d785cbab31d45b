"""The Gradio A/B chat page: base | the recommended system side by side (or blind A/B with votes), and chat.

    tunebot serve runs/acme-demo --ui          # page at http://127.0.0.1:8000/ui/

The page talks to the API through the openai client (so it works against a remote tunebot too),
streams both answers at once, and shows model output as plain text: answers are HTML-escaped and
the chat panes render no Markdown, LaTeX or HTML, so an answer's `![x](http://host/p.png)` or
`<img src=...>` is shown as characters and the browser fetches nothing (a prompt-injected answer
cannot leak the conversation through an image URL). With a login (serve/page_guard.py) a visitor
who is not logged in gets only a small login form of tunebot's own: not Gradio's page (which
embeds the API description), no heartbeats, and throttled password attempts. Votes (A / B /
tie / both bad) and thumbs up/down append to serve/feedback.jsonl (serve/feedback.py). Offline:
no analytics, no share links.
"""

from __future__ import annotations

import html
import os
import queue
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from serve.feedback import append_feedback

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# Chat panes show text, nothing else: no Markdown (images, links), no LaTeX, no tags, no avatars.
PLAIN_TEXT: dict[str, Any] = {"render_markdown": False, "sanitize_html": True, "latex_delimiters": [],
                              "allow_tags": False, "avatar_images": None, "allow_file_downloads": False}


def shown(text: str) -> str:
    """How an answer is displayed: escaped, so '<script>' appears as text."""
    return html.escape(text, quote=False)


def _stream(client: Any, model: str, messages: list[dict], out: queue.Queue, side: str) -> None:
    try:
        # no max_tokens: the server's serve.default_max_tokens applies, which fits its context
        for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, temperature=0.0):
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                out.put((side, piece))
    except Exception as error:  # shown in the pane, the page keeps working
        out.put((side, f"\n[error: {error}]"))
    out.put((side, None))


def ab_answers(client: Any, labels: dict[str, str], raw: dict[str, list[dict]]) -> Iterator[dict[str, str]]:
    """Streams both sides' answers concurrently; yields {side: text so far} after each piece."""
    out: queue.Queue = queue.Queue()
    texts = {"A": "", "B": ""}
    for side in ("A", "B"):
        threading.Thread(target=_stream, args=(client, labels[side], raw[side], out, side), daemon=True).start()
    finished = 0
    while finished < 2:
        side, piece = out.get()
        if piece is None:
            finished += 1
            continue
        texts[side] += piece
        yield dict(texts)


def new_labels(models: list[str], blind: bool, preferred: str | None = None) -> dict[str, str]:
    """Which model answers in pane A and B: base | the recommended system (else tuned), or a random order when blind."""
    other = preferred if preferred in models and preferred != "base" else "tuned"
    pair = [m for m in ("base", other) if m in models] or models[:2]
    pair = (pair + pair)[:2]
    if blind:
        random.shuffle(pair)
    return {"A": pair[0], "B": pair[1]}


def pane_titles(labels: dict[str, str], blind: bool) -> tuple[str, str]:
    """Pane labels: 'A' / 'B' when blind, else the model names."""
    return ("A", "B") if blind else (labels["A"], labels["B"])


def save_vote(feedback: Path, choice: str, mapping: dict, history: dict, blind: bool,
              session: str | None = None) -> str:
    """Appends an A/B vote (with its page session: a re-vote replaces it at export) and reveals the models."""
    if not history["A"] or history["A"][-1]["role"] != "assistant":
        return "Ask something first, then vote."
    append_feedback(feedback, {"kind": "vote", "conversation": history["A"][:-1], "blind": blind,
                               "labels": mapping, "vote": choice, "session": session,
                               "answers": {side: history[side][-1]["content"] for side in ("A", "B")}})
    return f"Vote saved: {choice}. A was **{mapping['A']}**, B was **{mapping['B']}**."


def _voter(gr: Any, feedback: Path, choice: str) -> Any:
    """The click handler of one vote button; Gradio passes the page session as `request`."""
    def vote(mapping: dict, history: dict, blind: bool, request: Any) -> str:
        return save_vote(feedback, choice, mapping, history, blind, getattr(request, "session_hash", None))

    vote.__annotations__["request"] = gr.Request  # how Gradio knows to pass the request here
    return vote


def _ab_tab(gr: Any, client: Any, models: list[str], feedback: Path, preferred: str | None = None) -> None:
    blind = gr.Checkbox(label="Blind mode (panes A/B in random order, names shown after the vote)", value=False)
    labels = gr.State(new_labels(models, False, preferred))
    was_blind = gr.State(False)  # how this conversation was started (the vote records it, not the checkbox)
    raw = gr.State({"A": [], "B": []})
    with gr.Row():
        left = gr.Chatbot(label=pane_titles(new_labels(models, False, preferred), False)[0], elem_id="pane-a",
                          height=420,
                          **PLAIN_TEXT)
        right = gr.Chatbot(label=pane_titles(new_labels(models, False, preferred), False)[1], elem_id="pane-b",
                           height=420,
                           **PLAIN_TEXT)
    message = gr.Textbox(label="Message", placeholder="Ask both models…", elem_id="ab-input")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="ab-send")
        votes = {vote: gr.Button(text) for vote, text in
                 (("A", "A is better"), ("B", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad"))}
        clear = gr.Button("New conversation")
    status = gr.Markdown("")

    def restart(is_blind: bool) -> tuple:
        fresh = new_labels(models, is_blind, preferred)
        titles = pane_titles(fresh, is_blind)
        return fresh, is_blind, {"A": [], "B": []}, gr.Chatbot(value=[], label=titles[0]), \
            gr.Chatbot(value=[], label=titles[1]), ""

    def ask(text: str, mapping: dict, history: dict, shown_a: list, shown_b: list) -> Iterator[tuple]:
        if not text.strip():
            yield history, shown_a, shown_b, "", "Type a message first."
            return
        history = {side: history[side] + [{"role": "user", "content": text}] for side in ("A", "B")}
        shown_a, shown_b = shown_a + [{"role": "user", "content": shown(text)}], shown_b + [{"role": "user",
                "content": shown(text)}]
        texts = {"A": "", "B": ""}
        for texts in ab_answers(client, mapping, history):
            yield history, shown_a + [{"role": "assistant", "content": shown(texts["A"])}], \
                shown_b + [{"role": "assistant", "content": shown(texts["B"])}], "", ""
        history = {side: history[side] + [{"role": "assistant", "content": texts[side]}] for side in ("A", "B")}
        yield history, shown_a + [{"role": "assistant", "content": shown(texts["A"])}], \
            shown_b + [{"role": "assistant", "content": shown(texts["B"])}], "", ""

    blind.change(restart, [blind], [labels, was_blind, raw, left, right, status], api_name="blind")
    clear.click(restart, [blind], [labels, was_blind, raw, left, right, status])
    for trigger in (send.click, message.submit):
        trigger(ask, [message, labels, raw, left, right], [raw, left, right, message, status], api_name="ab_send")
    for choice, button in votes.items():
        button.click(_voter(gr, feedback, choice), [labels, raw, was_blind], [status], api_name=f"vote_{choice}")


def _chat_tab(gr: Any, client: Any, models: list[str], feedback: Path, preferred: str | None = None) -> None:
    model = gr.Dropdown(models, value=preferred if preferred in models else models[-1], label="Model")
    raw = gr.State([])
    chat = gr.Chatbot(elem_id="single-chat", height=420, feedback_options=("Like", "Dislike"), **PLAIN_TEXT)
    message = gr.Textbox(label="Message", elem_id="single-input")

    def ask(text: str, name: str, history: list, display: list) -> Iterator[tuple]:
        history = history + [{"role": "user", "content": text}]
        display = display + [{"role": "user", "content": shown(text)}]
        answer = ""
        for answer in (texts["A"] for texts in ab_answers(client, {"A": name, "B": name}, {"A": history, "B": []})):
            yield history, display + [{"role": "assistant", "content": shown(answer)}], ""
        yield history + [{"role": "assistant", "content": answer}], display + [{"role": "assistant",
                "content": shown(answer)}], ""

    def rate(name: str, history: list, data: Any) -> None:
        index = data.index if isinstance(data.index, int) else data.index[0]
        if 0 <= index < len(history) and history[index]["role"] == "assistant":
            append_feedback(feedback, {"kind": "rating", "conversation": history[:index], "model": name,
                                       "answer": history[index]["content"], "rating": "up" if data.liked else "down"})

    rate.__annotations__["data"] = gr.LikeData  # how Gradio knows to pass the like event here
    message.submit(ask, [message, model, raw, chat], [raw, chat, message], api_name="chat_send")
    chat.like(rate, [model, raw], None, api_name="rate")
    model.change(lambda: ([], []), None, [raw, chat])


def build_ui(api_url: str, api_key: str | None, models: list[str], feedback: Path, preferred: str | None = None) -> Any:
    """The Blocks app: an A/B tab (base against `preferred`, the recommended system) and a single-model chat tab."""
    import gradio as gr
    from openai import OpenAI

    client = OpenAI(base_url=api_url, api_key=api_key or "not-needed", max_retries=0, timeout=600)
    with gr.Blocks(title="tunebot: base vs tuned", analytics_enabled=False) as blocks:
        gr.Markdown("# tunebot: base vs tuned")
        with gr.Tab("A/B"):
            _ab_tab(gr, client, models, feedback, preferred)
        with gr.Tab("Chat"):
            _chat_tab(gr, client, models, feedback, preferred)
    return blocks


def mount_ui(app: Any, api_url: str, api_key: str | None, models: list[str], feedback: Path,
             preferred: str | None = None) -> Any:
    """Mounts the page at /ui on the gateway app; with an API key the page asks for it as the password."""
    import secrets

    import gradio as gr

    from starlette.routing import Mount

    from serve.page_guard import PageGuard

    login = (lambda user, password: secrets.compare_digest(password.encode(), api_key.encode())) if api_key else None
    blocks = build_ui(api_url, api_key, models, feedback, preferred)
    app = gr.mount_gradio_app(app, blocks, path="/ui", auth=login, footer_links=[], run_history=False)
    if api_key:
        page = next(route.app for route in app.routes if isinstance(route, Mount) and route.path == "/ui")
        app.add_middleware(PageGuard, prefix="/ui", page=page)
    return app
