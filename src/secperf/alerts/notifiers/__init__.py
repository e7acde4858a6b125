"""Where alert notifications go: webhook (Alertmanager v4 payload), Alertmanager API, log."""

from __future__ import annotations

from secperf.alerts.notifiers.alertmanager import AlertmanagerNotifier
from secperf.alerts.notifiers.interface import Notifier, NotifyError, PermanentNotifyError
from secperf.alerts.notifiers.log import LogNotifier
from secperf.alerts.notifiers.runner import NotifierRunner, NotifierStats
from secperf.alerts.notifiers.webhook import WebhookNotifier, webhook_payload
from secperf.config import NotifierConfig


def notifier_from_config(cfg: NotifierConfig, external_url: str) -> Notifier:
    """Build the notifier an ``[[alerts.notifiers]]`` entry describes."""
    timeout_s = cfg.timeout / 1000
    if cfg.kind == "log":
        return LogNotifier(send_resolved=cfg.send_resolved)
    assert cfg.url is not None  # config's cross-checks require it for these kinds
    if cfg.kind == "webhook":
        return WebhookNotifier(
            cfg.url, timeout_s=timeout_s, send_resolved=cfg.send_resolved, external_url=external_url
        )
    return AlertmanagerNotifier(
        cfg.url, timeout_s=timeout_s, send_resolved=cfg.send_resolved, external_url=external_url
    )


__all__ = [
    "AlertmanagerNotifier",
    "LogNotifier",
    "Notifier",
    "NotifierRunner",
    "NotifierStats",
    "NotifyError",
    "PermanentNotifyError",
    "WebhookNotifier",
    "notifier_from_config",
    "webhook_payload",
]
