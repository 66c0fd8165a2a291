"""Channel adapters. A channel sends one outbox message and returns the provider's id.

- Email: Django's SMTP backend (settings ``QIFU_SMTP_*``), Message-ID derived from the key.
- SMS: chosen by ``QIFU_SMS_BACKEND``, like Django's email backends: ``file`` (development:
  JSON lines under ``$QIFU_DATA_DIR/sms``, one file per batch the sender hands over, named by
  the batch's keys, so a resend of the same batch after a crash overwrites instead of
  duplicating), ``console``, or ``http`` (a gateway that accepts a client message id and
  ignores repeats; ``QIFU_SMS_GATEWAY_URL``, ``QIFU_SMS_GATEWAY_TOKEN``).

Every channel is a ``Channel``: ``send``, and ``close()`` for a connection it kept open. One
that deduplicates by key (``idempotent``) may also offer ``send_many(messages)``, which the
sender uses for its batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from qifu import config

SUBJECTS = {
    "filing": "年报提醒（年报不收费）",
    "correction": "年报更正通知（年报不收费）",
    "signin": "企服平台登录验证码",
}


class ChannelError(Exception):
    """The provider refused or could not be reached; the sender retries with backoff."""


_JSON = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


def _name(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class Channel:
    """What the sender relies on: ``send`` (and, for channels that drop repeats of a key,
    ``idempotent`` and optionally ``send_many``), and ``close``."""

    idempotent = False

    def close(self) -> None:
        """Nothing is kept open."""


class EmailChannel(Channel):
    """One SMTP connection for all the messages of a sending run (reopened after an error)."""

    def __init__(self):
        self.connection = None

    def send(self, message) -> str:
        msg_id = f"<{_name(message.key)}@qifu>"
        if self.connection is None:
            self.connection = get_connection(fail_silently=False)
        email = EmailMessage(
            subject=SUBJECTS.get(message.purpose, SUBJECTS["filing"]), body=message.body, from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient], headers={"Message-ID": msg_id}, connection=self.connection,
        )
        try:
            self.connection.open()  # no-op while the connection is open
            email.send()
        except OSError as e:
            self.close()
            raise ChannelError(str(e)) from e
        return msg_id

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except OSError:
                pass
            self.connection = None


class FileSmsChannel(Channel):
    idempotent = True

    def __init__(self, folder: Path | None = None):
        self.folder = folder or config.data_dir() / "sms"
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, message) -> str:
        return self.send_many([message])[0]

    def send_many(self, messages) -> list[str]:
        """One file per batch, written whole and then renamed, named by the batch's keys: the
        sender re-forms the same batch after a crash, which then replaces the file."""
        name = _name("\n".join(m.key for m in messages))
        encode = _JSON.encode
        lines = "".join(encode({"key": m.key, "to": m.recipient, "text": m.body}) + "\n" for m in messages)
        tmp = os.path.join(self.folder, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(lines)
        os.replace(tmp, os.path.join(self.folder, f"{name}.jsonl"))
        return [_name(m.key) for m in messages]

    @staticmethod
    def delivered(folder: Path) -> list[dict]:
        """Every message the file backend holds, in file order (tests and developers)."""
        return [json.loads(line) for path in sorted(Path(folder).glob("*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines() if line]


class ConsoleSmsChannel(Channel):
    def send(self, message) -> str:
        print(f"[短信] {message.recipient}: {message.body}", file=sys.stdout, flush=True)
        return _name(message.key)


class HttpSmsChannel(Channel):
    idempotent = True

    def __init__(self, url: str, token: str = "", timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, message) -> str:
        body = json.dumps({"client_id": message.key, "mobile": message.recipient, "content": message.body},
                          ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read() or b"{}")
        except (OSError, ValueError) as e:
            raise ChannelError(str(e)) from e
        return str(data.get("id", _name(message.key)))


_warned = False


def sms_channel():
    """The configured SMS backend. With none configured, a one-off command (`qifu remind run`,
    a test harness's season) writes texts to files and says so once on stderr; `qifu worker`
    refuses to start that way (``config.require_real_sms``)."""
    global _warned
    backend = config.get("QIFU_SMS_BACKEND")
    if backend is None:
        backend = "file"
        if not _warned and not config.is_demo():
            _warned = True
            print(f"警告：未配置短信通道（QIFU_SMS_BACKEND），短信只写入 {config.data_dir() / 'sms'} 下的文件，并未真正发出",
                  file=sys.stderr, flush=True)
    if backend == "file":
        return FileSmsChannel()
    if backend == "console":
        return ConsoleSmsChannel()
    if backend == "http":
        url = config.get("QIFU_SMS_GATEWAY_URL")
        if not url:
            raise config.ConfigError("QIFU_SMS_BACKEND=http needs QIFU_SMS_GATEWAY_URL")
        return HttpSmsChannel(url, config.get("QIFU_SMS_GATEWAY_TOKEN", "") or "")
    raise config.ConfigError(f"QIFU_SMS_BACKEND must be file, console or http, not {backend!r}")


class WeChatChannel(Channel):
    """Adapter point for WeChat template messages through the county's WeChat gateway
    (``QIFU_WECHAT_URL``): the same request shape as the SMS gateway, keyed by the entity's
    bound openid. Not chosen by the policy until a bureau has bound openids to entities."""

    idempotent = True

    def __init__(self):
        url = config.get("QIFU_WECHAT_URL")
        if not url:
            raise config.ConfigError("微信渠道需要 QIFU_WECHAT_URL（县里的微信消息网关地址）")
        self.http = HttpSmsChannel(url, config.get("QIFU_WECHAT_TOKEN", "") or "")

    def send(self, message) -> str:
        return self.http.send(message)


def channel_for(name: str):
    if name == "email":
        return EmailChannel()
    if name == "sms":
        return sms_channel()
    if name == "wechat":
        return WeChatChannel()
    raise ValueError(f"no sending channel for {name}")
