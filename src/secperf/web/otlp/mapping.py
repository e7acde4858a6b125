"""An OTLP ``ExportMetricsServiceRequest`` as secperf samples.

The whole request is mapped before anything is published, so a malformed
one (``OtlpInvalid``, answered 400) stores nothing. Data points that are
well-formed OTLP but that secperf cannot store (a NaN, an exponential or a
delta histogram, a name or a label too long) are left out and counted: the
answer is a partial success naming the first few, as the OTLP specification
asks. The bounds on names, labels and values are the JSON ingest's
(``model.py``): a metric whose name is too long loses all its points, a point
with an attribute key or value too long loses itself.

Mapping (see docs/integrations.md, "OpenTelemetry in"):

* gauge -> one sample per point;
* sum, monotonic and cumulative -> a counter ``<name>_total``;
* sum, cumulative and not monotonic (an up-down counter) -> a gauge named as
  the sum is (unit ``1`` adds ``_ratio`` to OpenTelemetry gauges only);
* sum, delta -> the change per second over the point's interval, a gauge
  ``<name>_per_second`` (stateless: nothing to lose on a restart);
* histogram, cumulative -> ``<name>_bucket{le=...}`` (cumulative counts,
  ``+Inf`` included), ``<name>_sum`` and ``<name>_count``, as Prometheus does;
* summary -> ``<name>{quantile=...}``, ``<name>_sum``, ``<name>_count``;
* resource ``service.name`` (with ``service.namespace``) -> ``job``,
  ``service.instance.id`` -> ``instance``, ``host.name`` -> ``host``, other
  resource attributes but ``telemetry.*`` and every point attribute -> labels.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from secperf.model import (
    MAX_FUTURE_SKEW_MS,
    MAX_LABEL_NAME_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS_PER_SERIES,
    Sample,
)
from secperf.web.otlp.names import (
    MetricNameError,
    NameTooLong,
    check_metric_name_length,
    label_name,
    metric_name,
)

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        SummaryDataPoint,
    )

#: Labels one series may carry (as the JSON ingest allows).
MAX_LABELS = MAX_LABELS_PER_SERIES
#: Longest label value (as the JSON ingest allows).
MAX_LABEL_VALUE = MAX_LABEL_VALUE_LENGTH
#: Samples one request may yield (a histogram point yields one per bucket + 2).
MAX_SAMPLES = 100_000
#: Reasons for left-out points named in a partial success's message.
MAX_REASONS = 3

TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2
#: Set on a point that marks the end of a series (no value recorded).
FLAG_NO_RECORDED_VALUE = 1

#: Resource attributes that become a label of another name.
_RESOURCE_LABELS = {
    "service.instance.id": "instance",
    "host.name": "host",
}
_NS_PER_MS = 1_000_000


class OtlpInvalid(ValueError):
    """A request that is not valid OTLP: answered 400, nothing stored."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class OtlpTooMany(ValueError):
    """A request that yields more samples than one request may carry."""


class _PointRejected(Exception):
    """One data point left out; the request goes on."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """Bounds and choices of the mapping."""

    max_labels: int = MAX_LABELS
    max_samples: int = MAX_SAMPLES
    #: Add the instrumentation scope's name as ``otel_scope_name``.
    scope_label: bool = False


@dataclass(slots=True)
class MappedRequest:
    """The samples of a request, and the data points left out with why."""

    samples: list[Sample] = field(default_factory=list)
    accepted_points: int = 0
    rejected_points: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def rejection_message(self) -> str:
        """A message for a partial success: the first reasons, and how many more."""
        shown = "; ".join(self.reasons)
        more = self.rejected_points - len(self.reasons)
        return f"{shown}; and {more} more" if more > 0 else shown


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def _label_value(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind is None:
        return ""
    return json.dumps(_any_value(value), separators=(",", ":"), sort_keys=True)


def _joined(attributes: Iterable[KeyValue], name: str) -> str:
    """The values of every key cleaning to ``name``, in the order of the keys (as Prometheus)."""
    pairs = sorted((a.key, _label_value(a.value)) for a in attributes if _name_of(a.key) == name)
    return ";".join(value for _, value in pairs)


def _name_of(key: str) -> str | None:
    """The label name of ``key``; None for a key over the bound too (refused where it stands)."""
    if len(key) > MAX_LABEL_NAME_LENGTH:
        return None
    try:
        return label_name(key)
    except NameTooLong:
        return None


def _attribute_labels(attributes: Sequence[KeyValue], where: str) -> dict[str, str]:
    """Attributes as labels; keys that clean to one name join their values with ``;``.

    The hot path of the receiver (once per data point): string values are
    read directly, and the rare clash is resolved by a second look.
    """
    labels: dict[str, str] = {}
    for index, attribute in enumerate(attributes):
        key = attribute.key
        try:
            name = label_name(key)
        except NameTooLong as exc:
            raise _PointRejected(f"{where}[{index}].key", str(exc)) from None
        if name is None:
            raise _PointRejected(
                f"{where}[{index}].key", f"attribute key {key!r} makes no label name"
            )
        value_of = attribute.value
        if value_of.WhichOneof("value") == "string_value":
            value = value_of.string_value
        else:
            value = _label_value(value_of)
        if len(value) > MAX_LABEL_VALUE:
            raise _PointRejected(
                f"{where}[{index}].value",
                f"label {name!r} is {len(value)} characters long; at most {MAX_LABEL_VALUE}",
            )
        if name in labels:
            value = _joined(attributes, name)
        labels[name] = value
    return labels


@dataclass(slots=True)
class _Resource:
    """A resource's labels: the ordinary ones, and those that win over a point's."""

    labels: dict[str, str]
    identity: dict[str, str]
    problem: tuple[str, str] | None = None


def _resource(attributes: Iterable[KeyValue], where: str) -> _Resource:
    plain: list[KeyValue] = []
    identity: dict[str, str] = {}
    service = namespace = None
    for attribute in attributes:
        key = attribute.key
        if key == "service.name":
            service = _label_value(attribute.value)
        elif key == "service.namespace":
            namespace = _label_value(attribute.value)
        elif key in _RESOURCE_LABELS:
            identity[_RESOURCE_LABELS[key]] = _label_value(attribute.value)
        elif not key.startswith("telemetry."):
            # The SDK's own name and version on every series say nothing about the service.
            plain.append(attribute)
    if service:
        identity["job"] = f"{namespace}/{service}" if namespace else service
    for name, value in identity.items():
        if len(value) > MAX_LABEL_VALUE:
            problem = f"label {name!r} is {len(value)} characters long; at most {MAX_LABEL_VALUE}"
            return _Resource({}, identity, (where, problem))
    try:
        labels = _attribute_labels(plain, where)
    except _PointRejected as exc:
        return _Resource({}, identity, (exc.where, exc.problem))
    return _Resource(labels, identity)


class _Mapper:
    """Maps one request; holds the running result and the options."""

    def __init__(self, options: MappingOptions, now_ms: int) -> None:
        self.options = options
        self.now_ms = now_ms
        self.result = MappedRequest()

    # ------------------------------------------------------------------ helpers

    def _labels(
        self, base: dict[str, str], resource: _Resource, attributes: Sequence[KeyValue], where: str
    ) -> dict[str, str]:
        # Every value was checked for length where it was read (here or in _resource).
        labels = _attribute_labels(attributes, where)
        if base:
            labels = {**base, **labels}
        for name, value in resource.identity.items():
            if name in labels and labels[name] != value:
                labels[f"exported_{name}"] = labels[name]
            labels[name] = value
        if len(labels) > self.options.max_labels:
            raise _PointRejected(
                where.rsplit(".", 1)[0],
                f"{len(labels)} labels; at most {self.options.max_labels} per series",
            )
        return labels

    def _time_ms(self, time_unix_nano: int, where: str) -> int:
        if time_unix_nano == 0:
            raise OtlpInvalid(f"{where}.timeUnixNano", "is required (0 or missing)")
        ms = time_unix_nano // _NS_PER_MS
        if ms > self.now_ms + MAX_FUTURE_SKEW_MS:
            raise _PointRejected(
                f"{where}.timeUnixNano", "more than 10 minutes in the future (clock skew?)"
            )
        return ms

    @staticmethod
    def _finite(value: float, where: str) -> float:
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}Infinity"
            raise _PointRejected(where, f"{shown} cannot be stored (finite numbers only)")
        return value

    @staticmethod
    def _number(point: NumberDataPoint, where: str) -> float:
        kind = point.WhichOneof("value")
        if kind == "as_double":
            return _Mapper._finite(point.as_double, f"{where}.asDouble")
        if kind == "as_int":
            return float(point.as_int)
        raise OtlpInvalid(where, "has no value: asDouble or asInt is required")

    @staticmethod
    def _reserved(labels: dict[str, str], name: str) -> None:
        """Keep a point's own ``le``/``quantile`` as ``exported_<name>``."""
        if name in labels:
            labels[f"exported_{name}"] = labels.pop(name)

    def _add(self, samples: list[Sample]) -> None:
        out = self.result.samples
        if len(out) + len(samples) > self.options.max_samples:
            raise OtlpTooMany(
                f"the request yields more than {self.options.max_samples} samples; "
                "send smaller batches"
            )
        out.extend(samples)

    # ------------------------------------------------------------------ points

    def _points(
        self,
        points: Iterable[Any],
        where: str,
        build: Any,
    ) -> None:
        """Map each point with ``build(point, point_where)``; count what is kept or left out."""
        result = self.result
        for index, point in enumerate(points):
            point_where = f"{where}.dataPoints[{index}]"
            if point.flags & FLAG_NO_RECORDED_VALUE:
                continue  # the end of a series: nothing to store
            try:
                samples = build(point, point_where)
            except _PointRejected as exc:
                result.rejected_points += 1
                if len(result.reasons) < MAX_REASONS:
                    result.reasons.append(str(exc))
                continue
            self._add(samples)
            result.accepted_points += 1

    def _reject_all(self, count: int, where: str, problem: str) -> None:
        result = self.result
        if count == 0:
            return
        result.rejected_points += count
        if len(result.reasons) < MAX_REASONS:
            result.reasons.append(f"{where}: {problem}")

    def metric(self, metric: Metric, base: dict[str, str], resource: _Resource, where: str) -> None:
        """Map one metric's points."""
        kind = metric.WhichOneof("data")
        if not metric.name:
            raise OtlpInvalid(f"{where}.name", "is required")
        if kind is None:
            raise OtlpInvalid(
                where,
                "has no data: one of gauge, sum, histogram, exponentialHistogram, summary",
            )
        try:
            if kind == "gauge":
                self._gauge(metric, base, resource, where)
            elif kind == "sum":
                self._sum(metric, base, resource, where)
            elif kind == "histogram":
                self._histogram(metric, base, resource, where)
            elif kind == "summary":
                self._summary(metric, base, resource, where)
            else:
                self._reject_all(
                    len(metric.exponential_histogram.data_points),
                    f"{where}.exponentialHistogram",
                    "exponential histograms are not supported; configure the SDK "
                    "to use explicit bucket histograms",
                )
        except MetricNameError as exc:
            raise OtlpInvalid(f"{where}.name", str(exc)) from None
        except NameTooLong as exc:
            # Well-formed OTLP that secperf cannot store: its points are left out.
            self._reject_all(_point_count(metric), f"{where}.name", str(exc))

    def _gauge(self, metric: Metric, base: dict[str, str], res: _Resource, where: str) -> None:
        name = metric_name(metric.name, metric.unit, gauge=True)

        def build(point: NumberDataPoint, at: str) -> list[Sample]:
            value = self._number(point, at)
            ms = self._time_ms(point.time_unix_nano, at)
            return [
                Sample(
                    name, self._labels(base, res, point.attributes, f"{at}.attributes"), ms, value
                )
            ]

        self._points(metric.gauge.data_points, f"{where}.gauge", build)

    def _sum(self, metric: Metric, base: dict[str, str], res: _Resource, where: str) -> None:
        data = metric.sum
        temporality = data.aggregation_temporality
        at_sum = f"{where}.sum"
        if temporality not in (TEMPORALITY_DELTA, TEMPORALITY_CUMULATIVE):
            raise OtlpInvalid(
                f"{at_sum}.aggregationTemporality",
                f"{temporality} is not 1 (delta) or 2 (cumulative)",
            )
        # A sum is no gauge for naming, even stored as one: unit "1" adds no "_ratio".
        if temporality == TEMPORALITY_DELTA:
            rate = metric_name(metric.name, metric.unit, gauge=False)
            name = rate if rate.endswith("_per_second") else f"{rate}_per_second"
            check_metric_name_length(name, "the metric name with its _per_second suffix")
        else:
            counter = data.is_monotonic
            name = metric_name(metric.name, metric.unit, gauge=False, counter=counter)

        def build(point: NumberDataPoint, at: str) -> list[Sample]:
            value = self._number(point, at)
            ms = self._time_ms(point.time_unix_nano, at)
            if temporality == TEMPORALITY_DELTA:
                start = point.start_time_unix_nano
                if start == 0 or start >= point.time_unix_nano:
                    raise _PointRejected(
                        f"{at}.startTimeUnixNano",
                        "a delta sum needs a start time before its time",
                    )
                value = value / ((point.time_unix_nano - start) / 1e9)
            labels = self._labels(base, res, point.attributes, f"{at}.attributes")
            return [Sample(name, labels, ms, value)]

        self._points(data.data_points, at_sum, build)

    def _histogram(self, metric: Metric, base: dict[str, str], res: _Resource, where: str) -> None:
        data = metric.histogram
        at_hist = f"{where}.histogram"
        temporality = data.aggregation_temporality
        if temporality == TEMPORALITY_DELTA:
            self._reject_all(
                len(data.data_points),
                f"{at_hist}",
                "delta histograms are not supported; set the exporter's temporality "
                "preference to cumulative",
            )
            return
        if temporality != TEMPORALITY_CUMULATIVE:
            raise OtlpInvalid(
                f"{at_hist}.aggregationTemporality",
                f"{temporality} is not 1 (delta) or 2 (cumulative)",
            )
        name = metric_name(metric.name, metric.unit, gauge=False)
        check_metric_name_length(f"{name}_bucket", "the metric name with its _bucket suffix")

        def build(point: HistogramDataPoint, at: str) -> list[Sample]:
            bounds = list(point.explicit_bounds)
            counts = list(point.bucket_counts)
            if counts and len(counts) != len(bounds) + 1:
                raise OtlpInvalid(
                    f"{at}.bucketCounts",
                    f"{len(counts)} counts for {len(bounds)} bounds; expected {len(bounds) + 1}",
                )
            for i, bound in enumerate(bounds):
                if not math.isfinite(bound) or (i and bound <= bounds[i - 1]):
                    raise OtlpInvalid(
                        f"{at}.explicitBounds[{i}]",
                        f"{bound} is not finite and above the bound before it",
                    )
            if counts and sum(counts) != point.count:
                raise OtlpInvalid(
                    f"{at}.count",
                    f"{point.count} is not the sum of bucketCounts ({sum(counts)})",
                )
            ms = self._time_ms(point.time_unix_nano, at)
            labels = self._labels(base, res, point.attributes, f"{at}.attributes")
            self._reserved(labels, "le")
            samples: list[Sample] = []
            running = 0
            for bound, count in zip(bounds, counts, strict=False):
                running += count
                samples.append(
                    Sample(f"{name}_bucket", {**labels, "le": repr(bound)}, ms, float(running))
                )
            samples.append(
                Sample(f"{name}_bucket", {**labels, "le": "+Inf"}, ms, float(point.count))
            )
            if point.HasField("sum"):
                total = self._finite(point.sum, f"{at}.sum")
                samples.append(Sample(f"{name}_sum", labels, ms, total))
            samples.append(Sample(f"{name}_count", labels, ms, float(point.count)))
            return samples

        self._points(data.data_points, at_hist, build)

    def _summary(self, metric: Metric, base: dict[str, str], res: _Resource, where: str) -> None:
        name = metric_name(metric.name, metric.unit, gauge=False)
        check_metric_name_length(f"{name}_count", "the metric name with its _count suffix")

        def build(point: SummaryDataPoint, at: str) -> list[Sample]:
            ms = self._time_ms(point.time_unix_nano, at)
            labels = self._labels(base, res, point.attributes, f"{at}.attributes")
            self._reserved(labels, "quantile")
            samples: list[Sample] = []
            for i, quantile in enumerate(point.quantile_values):
                q_at = f"{at}.quantileValues[{i}]"
                if not 0.0 <= quantile.quantile <= 1.0:
                    raise OtlpInvalid(f"{q_at}.quantile", f"{quantile.quantile} is not in [0, 1]")
                value = self._finite(quantile.value, f"{q_at}.value")
                q_labels = {**labels, "quantile": repr(quantile.quantile)}
                samples.append(Sample(name, q_labels, ms, value))
            samples.append(Sample(f"{name}_sum", labels, ms, self._finite(point.sum, f"{at}.sum")))
            samples.append(Sample(f"{name}_count", labels, ms, float(point.count)))
            return samples

        self._points(metric.summary.data_points, f"{where}.summary", build)


def _point_count(metric: Metric) -> int:
    """How many data points a metric holds, whatever its kind."""
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def _walk(request: ExportMetricsServiceRequest) -> Iterator[tuple[str, Any, Any, Any]]:
    for r, resource_metrics in enumerate(request.resource_metrics):
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            yield f"resourceMetrics[{r}].scopeMetrics[{s}]", resource_metrics, scope_metrics, r


def map_request(
    request: ExportMetricsServiceRequest, now_ms: int, options: MappingOptions | None = None
) -> MappedRequest:
    """Every sample of ``request``; raises ``OtlpInvalid`` or ``OtlpTooMany`` for the whole."""
    mapper = _Mapper(options or MappingOptions(), now_ms)
    resources: dict[int, _Resource] = {}
    for where, resource_metrics, scope_metrics, r in _walk(request):
        resource = resources.get(r)
        if resource is None:
            resource = _resource(
                resource_metrics.resource.attributes, f"resourceMetrics[{r}].resource.attributes"
            )
            resources[r] = resource
        base = dict(resource.labels)
        scope_problem: tuple[str, str] | None = None
        if mapper.options.scope_label and scope_metrics.scope.name:
            scope_name = scope_metrics.scope.name
            if len(scope_name) > MAX_LABEL_VALUE:
                scope_problem = (
                    f"{where}.scope.name",
                    f"label 'otel_scope_name' is {len(scope_name)} characters long; "
                    f"at most {MAX_LABEL_VALUE}",
                )
            base["otel_scope_name"] = scope_name
        for m, metric in enumerate(scope_metrics.metrics):
            metric_where = f"{where}.metrics[{m}]"
            if resource.problem is not None:
                mapper._reject_all(_point_count(metric), resource.problem[0], resource.problem[1])
                continue
            if scope_problem is not None:
                mapper._reject_all(_point_count(metric), scope_problem[0], scope_problem[1])
                continue
            mapper.metric(metric, base, resource, metric_where)
    # Valid by construction (names, label names, finite values, times checked
    # above); the store checks every sample again as it writes.
    return mapper.result
