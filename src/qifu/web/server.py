"""Serve the WSGI application with waitress (pure Python, no compiler, runs anywhere)."""

from __future__ import annotations

from waitress import serve as waitress_serve

from qifu.wsgi import application


def serve(host: str, port: int) -> None:
    print(f"企服 qifu 已启动：http://{host}:{port}/  （Ctrl+C 停止）", flush=True)
    waitress_serve(application, host=host, port=port, threads=8, ident="qifu")
