"""Turns HTML found in FAQ fields (exports from help-desk tools) into plain text with line breaks.

    python -c "from data_tools.html_text import html_to_text; print(html_to_text('<p>Hi&nbsp;there</p><li>a'))"

Block elements become line breaks, list items get "- ", script/style content is dropped and
entities are decoded (stdlib html.parser). Text without tags or entities is returned unchanged.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# HTML only when there is a closing tag, a void tag or an entity: "a<b and c>d" is not markup.
_LOOKS_LIKE_HTML = re.compile(
    r"</(?:p|div|li|ul|ol|b|i|u|em|strong|a|span|table|tr|td|th|h[1-6]|code|pre|section|blockquote|font|small)\s*>"
    r"|<(?:br|hr|img)\b[^<>]*>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);",
    re.IGNORECASE,
)
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "section",
           "blockquote", "hr"}
_SKIP = {"script", "style", "head"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n- " if tag == "li" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def looks_like_html(text: str) -> bool:
    """Tells whether `text` holds HTML tags or entities: looks_like_html('a <b>b</b>') -> True."""
    return bool(_LOOKS_LIKE_HTML.search(text))


def html_to_text(text: str) -> str:
    """Returns the plain text of an HTML fragment, keeping paragraph and list structure.

    >>> html_to_text("<p>返品は<b>30日</b>以内&amp;未使用</p><ul><li>A</li><li>B</li></ul>")
    '返品は30日以内&未使用\\n- A\\n- B'
    """
    if not looks_like_html(text):
        return text
    collector = _TextCollector()
    collector.feed(text)
    collector.close()
    joined = html.unescape("".join(collector.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in joined.split("\n")]
    return "\n".join(line for line in lines if line)
