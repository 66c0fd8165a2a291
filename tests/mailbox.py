"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import re


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def code_from(inbox: Inbox) -> str:
    """The sign-in code in the last message's body (UTF-8, 8bit, as Django sends Chinese text)."""
    return re.search(r"验证码是 ([0-9]{6})", inbox.messages[-1][1]).group(1)
