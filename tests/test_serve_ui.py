"""The Gradio A/B page through gradio_client: both panes answer, a vote lands in feedback.jsonl,
and markup in an answer is shown as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, serving

from serve.engine_hf import TransformersEngine
from serve.gateway import GatewaySettings, create_app
from serve.ui import mount_ui, new_labels, shown


@pytest.fixture(scope="module")
def page(tiny_model_dir: Path, tiny_adapter: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    feedback = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
    engine = TransformersEngine(str(tiny_model_dir), tiny_adapter, max_model_len=256)
    app = create_app(engine, GatewaySettings(system_prompt="S", api_key=None, max_model_len=256, default_max_tokens=8))
    port = free_port()  # the page calls the API of the same server
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", None, engine.names(), feedback)
    with serving(app, port) as url:
        yield url, feedback


def test_both_panes_answer_and_a_vote_is_saved(page: tuple[str, Path]) -> None:
    from gradio_client import Client

    url, feedback = page
    client = Client(f"{url}/ui/", verbose=False)
    left, right, box, status = client.predict("返品できますか？", api_name="/ab_send")  # State stays server-side
    assert [m["role"] for m in left] == ["user", "assistant"] and [m["role"] for m in right] == ["user", "assistant"]
    assert box == "" and left[1]["content"] and right[1]["content"]
    message = client.predict(api_name="/vote_A")
    assert "Vote saved: A" in message
    entry = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["vote"] == "A" and entry["conversation"] == [{"role": "user", "content": "返品できますか？"}]
    assert "Vote saved: B" in client.predict(api_name="/vote_B")  # a re-vote: the same session, so it replaces A
    again = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
    assert again["session"] == entry["session"] and len(entry["session"]) >= 8


def test_blind_mode_hides_the_order_and_reveals_it_after_the_vote(page: tuple[str, Path]) -> None:
    from gradio_client import Client

    url, feedback = page
    client = Client(f"{url}/ui/", verbose=False)
    orders = set()
    for _ in range(8):  # both orders appear (a fixed order 8 times running: p = 1/128)
        client.predict(True, api_name="/blind")  # a fresh blind conversation
        client.predict("Can I get a refund?", api_name="/ab_send")
        message = client.predict(api_name="/vote_B")
        entry = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
        assert entry["blind"] is True and entry["vote"] == "B" and sorted(entry["labels"].values()) == ["base", "tuned"]
        assert f"A was **{entry['labels']['A']}**, B was **{entry['labels']['B']}**" in message
        orders.add(entry["labels"]["A"])
    assert orders == {"base", "tuned"}


def test_labels_are_fixed_unless_blind() -> None:
    assert all(new_labels(["base", "tuned"], False) == {"A": "base", "B": "tuned"} for _ in range(20))
    assert {new_labels(["base", "tuned"], True)["A"] for _ in range(60)} == {"base", "tuned"}
    # the page offers the recommended system against base by default
    served = ["retrieval", "base", "rag", "tuned", "tuned_rag"]
    assert new_labels(served, False, "retrieval") == {"A": "base", "B": "retrieval"}
    assert new_labels(served, False, None) == {"A": "base", "B": "tuned"}
    assert new_labels(served, False, "base") == {"A": "base", "B": "tuned"}


def test_markup_in_answers_is_shown_as_text() -> None:
    escaped = '&lt;script&gt;alert("x")&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;'
    assert shown('<script>alert("x")</script><b>hi</b>') == escaped


def test_page_alone_works_against_a_remote_endpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    from gradio_client import Client

    from serve.ui_remote import remote_app

    engine = TransformersEngine(str(tiny_model_dir), None, max_model_len=256)
    api = create_app(engine,
                     GatewaySettings(system_prompt="S", api_key="k3y-0123456789abcdef", max_model_len=256,
                                     default_max_tokens=8))
    feedback = tmp_path / "votes.jsonl"
    with serving(api) as api_url, serving(remote_app(f"{api_url}/v1", "k3y-0123456789abcdef", feedback)) as page_url:
        client = Client(f"{page_url}/ui/", verbose=False, auth=("tunebot", "k3y-0123456789abcdef"))
        left, right, _, _ = client.predict("Can I return an item?", api_name="/ab_send")
        assert left[1]["content"] and right[1]["content"]
        assert "Vote saved: tie" in client.predict(api_name="/vote_tie")
    assert json.loads(feedback.read_text(encoding="utf-8"))["vote"] == "tie"


def test_page_alone_names_an_unreachable_endpoint(tmp_path: Path) -> None:
    from serve.server import ServeError
    from serve.ui_remote import remote_app

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServeError, match="cannot list models"):
        remote_app(url, None, tmp_path / "votes.jsonl")


PAGE_KEY = "page-key-0123456789abcdef"


@pytest.fixture(scope="module")
def locked(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page with a login (the API key is the password)."""
    engine = TransformersEngine(str(tiny_model_dir), None, max_model_len=256)
    app = create_app(engine,
                     GatewaySettings(system_prompt="S", api_key=PAGE_KEY, max_model_len=256, default_max_tokens=8))
    port = free_port()
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", PAGE_KEY, engine.names(),
                   tmp_path_factory.mktemp("locked") / "feedback.jsonl")
    with serving(app, port) as url:
        yield url


def test_a_visitor_who_is_not_logged_in_gets_only_a_login_form(locked: str) -> None:
    import httpx

    for path in ("/ui/", "/ui/?all_endpoints=1", "/ui"):
        page = httpx.get(f"{locked}{path}", follow_redirects=True, timeout=10)
        assert page.status_code == 200 and 'id="password"' in page.text
        assert "gradio_api_info" not in page.text and "ab_send" not in page.text and "http" not in page.text.lower()
    for path in ("/ui/gradio_api/heartbeat/abc123", "/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/queue/data",
                 "/ui/gradio_api/startup-events", "/ui/gradio_api/runs"):
        assert httpx.get(f"{locked}{path}", timeout=5).status_code == 401, path  # answered at once, nothing held open
    with httpx.Client(base_url=locked, timeout=10) as browser:
        assert browser.post("/ui/login", data={"username": "x", "password": PAGE_KEY}).status_code == 200
        assert browser.get("/ui/config").status_code == 200
        chatbots = [c["props"] for c in browser.get("/ui/config").json()["components"] if c["type"] == "chatbot"]
    assert len(chatbots) == 3 and all(not c["render_markdown"] and c["latex_delimiters"] == [] for c in chatbots)


def test_login_attempts_are_throttled_per_client(tiny_model_dir: Path, tmp_path: Path) -> None:
    import httpx

    from serve.page_guard import LOGIN_FAILURES

    engine = TransformersEngine(str(tiny_model_dir), None, max_model_len=256)
    app = create_app(engine,
                     GatewaySettings(system_prompt="S", api_key=PAGE_KEY, max_model_len=256, default_max_tokens=8))
    port = free_port()
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", PAGE_KEY, engine.names(), tmp_path / "feedback.jsonl")
    with serving(app, port) as url:
        statuses = [httpx.post(f"{url}/ui/login", data={"username": "x", "password": f"guess-{n}"}).status_code
                    for n in range(LOGIN_FAILURES + 3)]
        right = httpx.post(f"{url}/ui/login", data={"username": "x", "password": PAGE_KEY})
    assert statuses[:LOGIN_FAILURES] == [400] * LOGIN_FAILURES and set(statuses[LOGIN_FAILURES:]) == {429}
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
