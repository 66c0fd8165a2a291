"""Channel adapters. A channel sends one outbox message and returns the provider's id.

- Email: Django's SMTP backend (settings ``QIFU_SMTP_*``), Message-ID derived from the key.
- SMS: chosen by ``QIFU_SMS_BACKEND``, like Django's email backends: ``file`` (development:
  one JSON file per message under ``$QIFU_DATA_DIR/sms``, named by the key, so a resend after a
  crash overwrites instead of duplicating), ``console``, or ``http`` (a gateway that accepts a
  client message id and ignores repeats; ``QIFU_SMS_GATEWAY_URL``, ``QIFU_SMS_GATEWAY_TOKEN``).
"""

from __future__ import annotations

import hashlib
import json
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


def _name(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class EmailChannel:
    idempotent = False

    def send(self, message) -> str:
        msg_id = f"<{_name(message.key)}@qifu>"
        email = EmailMessage(
            subject=SUBJECTS.get(message.purpose, SUBJECTS["filing"]), body=message.body, from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient], headers={"Message-ID": msg_id}, connection=get_connection(fail_silently=False),
        )
        try:
            email.send()
        except OSError as e:
            raise ChannelError(str(e)) from e
        return msg_id


class FileSmsChannel:
    idempotent = True

    def __init__(self, folder: Path | None = None):
        self.folder = folder or config.data_dir() / "sms"
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, message) -> str:
        name = _name(message.key)
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps({"key": message.key, "to": message.recipient, "text": message.body},
                                  ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.folder / f"{name}.json")
        return name


class ConsoleSmsChannel:
    idempotent = False

    def send(self, message) -> str:
        print(f"[短信] {message.recipient}: {message.body}", file=sys.stdout, flush=True)
        return _name(message.key)


class HttpSmsChannel:
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


def sms_channel():
    backend = config.get("QIFU_SMS_BACKEND", "file")
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


class WeChatChannel:
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
