"""Scrapes Prometheus text-format targets (node exporter, applications) into samples.

As Prometheus does, every sample keeps its own labels and gains ``job``,
``instance``, ``host`` and the target's configured labels (an exposed label of
the same name is kept as ``exported_<name>``); samples keep their
sample names (``x_total``, ``x_bucket``, ``x_sum``, ``x_count``, ``x_created``).
Each target also gives ``up`` (1 or 0) and ``scrape_duration_seconds``.

A failed scrape (refused, timed out, HTTP error, oversized or unparsable
body, too many samples) yields ``up=0`` and no partial data; its error is kept
in ``status[url].last_error`` and logged. ``collect`` never raises for it.
A target's URL may carry a password or a ``?token=``: what is logged or kept
shows it as ``mask_url`` does, in the error's text too.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from secperf.config.units import mask_url, scrub_url
from secperf.model import LABEL_NAME_RE, METRIC_NAME_RE, Sample
from secperf.perf.collectors.interface import Collector, check_interval
from secperf.url_auth import without_credentials

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_SAMPLE_LIMIT = 50_000
_ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"
_CHUNK = 64 * 1024


class ScrapeError(Exception):
    """Why one scrape failed; its text is what ``last_error`` holds."""


@dataclass(frozen=True, repr=False)
class ScrapeTarget:
    """One endpoint to scrape, with its job name and extra labels."""

    url: str
    job: str = "prometheus"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        shown = self.shown_url
        # Only HTTP(S): urllib would otherwise happily read file:// or ftp:// URLs.
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"scrape target {shown!r} must be an http:// or https:// URL")
        for key, value in self.labels.items():
            if not LABEL_NAME_RE.match(key):
                raise ValueError(
                    f"scrape target {shown!r}: label name {key!r} "
                    f"must match {LABEL_NAME_RE.pattern}"
                )
            if not isinstance(value, str):
                raise ValueError(f"scrape target {shown!r}: label {key!r} must be a string")

    @property
    def shown_url(self) -> str:
        """The URL as logs, errors and tables show it: password and query values masked."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"ScrapeTarget({self.shown_url!r}, job={self.job!r}, labels={dict(self.labels)!r})"

    @property
    def instance(self) -> str:
        """``host:port`` as Prometheus labels it (default port from the scheme)."""
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.port is not None:
            return parsed.netloc.rsplit("@", 1)[-1]
        port = 443 if parsed.scheme == "https" else 80
        return f"{parsed.hostname}:{port}"


@dataclass
class TargetStatus:
    """The outcome of a target's latest scrape."""

    up: bool = False
    last_error: str | None = None
    last_scrape_ms: int | None = None
    last_duration_s: float | None = None
    last_samples: int = 0
    failures: int = 0


class PrometheusCollector(Collector):
    """Scrapes its targets each interval (concurrently when there are several)."""

    def __init__(
        self,
        targets: Iterable[ScrapeTarget | str],
        *,
        interval_s: float = 15.0,
        timeout_s: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        sample_limit: int = DEFAULT_SAMPLE_LIMIT,
        honor_timestamps: bool = True,
        host: str | None = None,
        name: str = "prometheus",
    ) -> None:
        super().__init__(name, interval_s, host)
        self.targets: tuple[ScrapeTarget, ...] = tuple(
            t if isinstance(t, ScrapeTarget) else ScrapeTarget(t) for t in targets
        )
        urls = [t.url for t in self.targets]
        if len(set(urls)) != len(urls):
            raise ValueError("scrape targets must not repeat a URL")
        self.timeout_s = check_interval(timeout_s, "scrape timeout_s")
        if max_bytes < 1 or sample_limit < 1:
            raise ValueError("max_bytes and sample_limit must be >= 1")
        self.max_bytes = max_bytes
        self.sample_limit = sample_limit
        self.honor_timestamps = honor_timestamps
        self.status: dict[str, TargetStatus] = {t.url: TargetStatus() for t in self.targets}
        # Prometheus does not use the environment's proxies for targets; neither do we.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._pool: ThreadPoolExecutor | None = None

    @property
    def last_error(self) -> str | None:
        """The error of the first target that failed its latest scrape, if any."""
        return next((s.last_error for s in self.status.values() if s.last_error), None)

    def collect(self, now_ms: int) -> list[Sample]:
        """Scrape every target; a failed one gives ``up=0`` and its error, never an exception."""
        if len(self.targets) <= 1:
            batches = [self.scrape(t, now_ms) for t in self.targets]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=min(8, len(self.targets)), thread_name_prefix=f"scrape-{self.name}"
                )
            pool = self._pool
            batches = list(pool.map(lambda t: self.scrape(t, now_ms), self.targets))
        return [s for batch in batches for s in batch]

    def close(self) -> None:
        """Stop the scrape threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ one target

    def scrape(self, target: ScrapeTarget, now_ms: int) -> list[Sample]:
        """Scrape one target: its samples plus ``up`` and ``scrape_duration_seconds``."""
        base = {**target.labels, "job": target.job, "instance": target.instance, "host": self.host}
        started = time.perf_counter()
        error: str | None = None
        samples: list[Sample] = []
        try:
            body = self._fetch(target.url)
            samples = self._parse(body, base, now_ms)
        except ScrapeError as exc:
            error = str(exc)
        except Exception as exc:  # an unexpected failure must not stop the other targets
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            # http.client quotes parts of the URL ("nonnumeric port: 'pw@host'").
            error = scrub_url(error, target.url)
        duration = time.perf_counter() - started
        status = self.status[target.url]
        status.up = error is None
        status.last_error = error
        status.last_scrape_ms = now_ms
        status.last_duration_s = duration
        status.last_samples = len(samples)
        if error is not None:
            status.failures += 1
            log.warning("scrape of %s (job %s) failed: %s", target.shown_url, target.job, error)
        samples.append(Sample("up", dict(base), now_ms, 0.0 if error else 1.0))
        samples.append(Sample("scrape_duration_seconds", dict(base), now_ms, duration))
        return samples

    def _fetch(self, url: str) -> str:
        # The scheme is checked to be http(s) in ScrapeTarget. A URL's user:password
        # is sent as Basic authentication, as Prometheus' basic_auth does.
        target, auth = without_credentials(url)
        request = urllib.request.Request(  # noqa: S310
            target, headers={"Accept": _ACCEPT, "User-Agent": "secperf", **auth}
        )
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                chunks: list[bytes] = []
                size = 0
                while True:
                    # The socket timeout bounds each read; the deadline bounds a slow trickle.
                    if time.monotonic() > deadline:
                        raise ScrapeError(f"timed out after {self.timeout_s:g} s reading the body")
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ScrapeError(f"response body exceeds {self.max_bytes} bytes")
                    chunks.append(chunk)
                charset = response.headers.get_content_charset() or "utf-8"
        except urllib.error.HTTPError as exc:
            raise ScrapeError(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise ScrapeError(f"timed out after {self.timeout_s:g} s") from None
            raise ScrapeError(f"cannot connect: {reason}") from None
        except TimeoutError:
            raise ScrapeError(f"timed out after {self.timeout_s:g} s") from None
        except (OSError, ValueError) as exc:
            raise ScrapeError(f"{type(exc).__name__}: {exc}") from None
        try:
            return b"".join(chunks).decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ScrapeError(f"body is not valid {charset} text: {exc}") from None

    def _parse(self, body: str, base: dict[str, str], now_ms: int) -> list[Sample]:
        out: list[Sample] = []
        try:
            # The parser is lazy; consuming it all before returning keeps a
            # malformed body from giving partial data, as Prometheus does.
            for family in text_string_to_metric_families(body):
                for s in family.samples:
                    if len(out) >= self.sample_limit:
                        raise ScrapeError(f"more than {self.sample_limit} samples (sample_limit)")
                    value = float(s.value)
                    if not math.isfinite(value):
                        continue  # NaN quantiles of an idle summary; the store refuses them
                    if not METRIC_NAME_RE.match(s.name):
                        raise ScrapeError(f"invalid metric name {s.name!r}")
                    labels = dict(base)
                    for key, val in s.labels.items():
                        if not LABEL_NAME_RE.match(key):
                            raise ScrapeError(f"{s.name}: invalid label name {key!r}")
                        labels[f"exported_{key}" if key in base else key] = val
                    ts = now_ms
                    if self.honor_timestamps and s.timestamp is not None:
                        ts = round(float(s.timestamp) * 1000)
                    out.append(Sample(s.name, labels, ts, value))
        except ScrapeError:
            raise
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            # The parser quotes the offending line; keep the error short.
            text = str(exc)
            text = text if len(text) <= 200 else text[:200] + "..."
            raise ScrapeError(f"cannot parse the body as Prometheus text format: {text}") from None
        return out
