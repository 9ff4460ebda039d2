"""A chat-only coding agent as users run Aider: each turn sends the whole conversation — a system prompt, the files
in a user message with the request, and a system reminder after it — with no tools, streams the answer through the
official openai SDK, and applies the SEARCH/REPLACE blocks of the plain-text answer to the files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai

SYSTEM = "Act as an expert software developer. Always use best practices when coding."
REMINDER = "Reply with SEARCH/REPLACE blocks only. Every block must use this format: the file path alone on a line, then a fence."
EDIT = re.compile(
    r"^(?P<path>[\w./-]+)\n```\w*\n<<<<<<< SEARCH\n(?P<search>.*?)\n=======\n(?P<replace>.*?)\n>>>>>>> REPLACE\n```", re.S | re.M
)


def edit_block(path: str, search: str, replace: str) -> str:
    return f"I will change {path}.\n\n{path}\n```python\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n"


class ChatAgent:
    def __init__(self, client: openai.OpenAI, model: str, root: Path) -> None:
        self.client, self.model, self.root = client, model, root
        self.history: list[dict[str, Any]] = []

    def ask(self, request: str) -> tuple[str, Any]:
        """One turn: (the answer's text, the usage the stream reported); its edits are applied."""
        files = "".join(f"{p.name}\n```\n{p.read_text()}```\n" for p in sorted(self.root.iterdir()) if p.is_file())
        user = {"role": "user", "content": f"{files}\n{request}"}
        messages = [{"role": "system", "content": SYSTEM}, *self.history, user, {"role": "system", "content": REMINDER}]
        text, usage = "", None
        for chunk in self.client.chat.completions.create(
            model=self.model, messages=messages, stream=True, stream_options={"include_usage": True}, temperature=0
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        for edit in EDIT.finditer(text):
            target = self.root / edit["path"]
            content = target.read_text()
            if edit["search"] in content:
                target.write_text(content.replace(edit["search"], edit["replace"], 1))
            elif edit["replace"] not in content:  # already there: done before (Aider says so too)
                raise AssertionError(f"the SEARCH text is not in {edit['path']}")
        self.history += [user, {"role": "assistant", "content": text}]
        return text, usage
