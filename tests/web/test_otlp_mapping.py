"""The OTLP mapping on real generated messages: names, units, kinds, labels and bounds."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from secperf.model import (
    MAX_LABEL_NAME_LENGTH,
    MAX_METRIC_NAME_LENGTH,
    Sample,
)
from secperf.web.otlp import wire
from secperf.web.otlp.mapping import (
    MappedRequest,
    MappingOptions,
    OtlpInvalid,
    OtlpTooMany,
    map_request,
)
from secperf.web.otlp.names import NameTooLong, label_name, metric_name
from secperf.web.routes_ingest import SampleIn

NOW_MS = time.time_ns() // 1_000_000
NOW_NS = NOW_MS * 1_000_000


def _request(
    metrics: list[dict[str, Any]],
    resource: dict[str, str] | None = None,
    scope: str = "",
) -> ExportMetricsServiceRequest:
    attributes = [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]
    payload = {
        "resourceMetrics": [
            {
                "resource": {"attributes": attributes},
                "scopeMetrics": [{"scope": {"name": scope}, "metrics": metrics}],
            }
        ]
    }
    return json_format.ParseDict(payload, ExportMetricsServiceRequest())


def _map(
    metrics: list[dict[str, Any]], resource: dict[str, str] | None = None, **options: Any
) -> MappedRequest:
    return map_request(_request(metrics, resource), NOW_MS, MappingOptions(**options))


def _point(value: float | int, **extra: Any) -> dict[str, Any]:
    key = "asInt" if isinstance(value, int) else "asDouble"
    return {"timeUnixNano": str(NOW_NS), key: value, **extra}


def _attrs(**labels: Any) -> list[dict[str, Any]]:
    out = []
    for key, value in labels.items():
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        else:
            out.append({"key": key, "value": {"stringValue": value}})
    return out


@pytest.mark.parametrize(
    ("name", "unit", "gauge", "counter", "expected"),
    [
        ("http.server.duration", "s", False, False, "http_server_duration_seconds"),
        ("http.server.duration", "ms", True, False, "http_server_duration_milliseconds"),
        ("net.io", "By/s", True, False, "net_io_bytes_per_second"),
        ("requests", "{request}", False, True, "requests_total"),
        ("requests_total", "1", False, True, "requests_total"),
        ("cpu.utilization", "1", True, False, "cpu_utilization_ratio"),
        ("memory_bytes", "By", True, False, "memory_bytes"),
        ("disk.free", "%", True, False, "disk_free_percent"),
        ("2xx-responses", "", True, False, "_2xx_responses"),
        ("app..latency.", "us", True, False, "app_latency_microseconds"),
        ("weird", "furlong/fortnight", True, False, "weird_furlong_per_fortnight"),
    ],
)
def test_metric_names_follow_the_prometheus_compatibility_rules(
    name: str, unit: str, gauge: bool, counter: bool, expected: str
) -> None:
    assert metric_name(name, unit, gauge=gauge, counter=counter) == expected


def test_label_names_are_cleaned() -> None:
    assert label_name("http.route") == "http_route"
    assert label_name("2fa") == "key_2fa"
    assert label_name("...") is None


def test_kinds_map_to_counters_gauges_rates_buckets_and_quantiles() -> None:
    start = NOW_NS - 10 * 1_000_000_000
    metrics = [
        {"name": "temp", "unit": "Cel", "gauge": {"dataPoints": [_point(21.5)]}},
        {
            "name": "jobs.done",
            "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [_point(7)]},
        },
        {
            "name": "jobs.queued",
            "sum": {"aggregationTemporality": 2, "isMonotonic": False, "dataPoints": [_point(-3)]},
        },
        {
            "name": "bytes.sent",
            "unit": "By",
            "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": True,
                "dataPoints": [_point(500, startTimeUnixNano=str(start))],
            },
        },
        {
            "name": "wait",
            "unit": "ms",
            "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [
                    {
                        "timeUnixNano": str(NOW_NS),
                        "count": "4",
                        "sum": 30.0,
                        "bucketCounts": ["1", "0", "3"],
                        "explicitBounds": [5, 10],
                        "attributes": _attrs(le="x"),
                    }
                ],
            },
        },
    ]
    mapped = _map(metrics)
    assert mapped.rejected_points == 0
    assert mapped.accepted_points == 5
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in mapped.samples}
    assert got == {
        ("temp_celsius", ()): 21.5,
        ("jobs_done_total", ()): 7.0,
        ("jobs_queued", ()): -3.0,
        # A delta sum: its change per second over the point's 10 s.
        ("bytes_sent_bytes_per_second", ()): 50.0,
        ("wait_milliseconds_bucket", (("exported_le", "x"), ("le", "5.0"))): 1.0,
        ("wait_milliseconds_bucket", (("exported_le", "x"), ("le", "10.0"))): 1.0,
        ("wait_milliseconds_bucket", (("exported_le", "x"), ("le", "+Inf"))): 4.0,
        ("wait_milliseconds_sum", (("exported_le", "x"),)): 30.0,
        ("wait_milliseconds_count", (("exported_le", "x"),)): 4.0,
    }
    assert {s.timestamp_ms for s in mapped.samples} == {NOW_MS}


def test_resource_attributes_become_labels_and_service_name_the_job() -> None:
    resource = {
        "service.name": "api",
        "service.instance.id": "i-1",
        "host.name": "h1",
        "cloud.region": "eu-west-1",
        "telemetry.sdk.name": "opentelemetry",
    }
    point = _point(1.0, attributes=_attrs(job="mine", retries=3, cached=True))
    mapped = _map([{"name": "up", "gauge": {"dataPoints": [point]}}], resource)
    assert mapped.samples[0].labels == {
        "job": "api",
        "exported_job": "mine",
        "instance": "i-1",
        "host": "h1",
        "cloud_region": "eu-west-1",
        "retries": "3",
        "cached": "true",
    }


def test_the_scope_name_is_a_label_only_when_asked() -> None:
    request = _request([{"name": "up", "gauge": {"dataPoints": [_point(1.0)]}}], scope="lib.x")
    plain = map_request(request, NOW_MS, MappingOptions())
    scoped = map_request(request, NOW_MS, MappingOptions(scope_label=True))
    assert plain.samples[0].labels == {}
    assert scoped.samples[0].labels == {"otel_scope_name": "lib.x"}


def test_attributes_cleaning_to_one_name_join_their_values() -> None:
    point = _point(1.0, attributes=_attrs(**{"a.b": "dot", "a-b": "dash"}))
    mapped = _map([{"name": "up", "gauge": {"dataPoints": [point]}}])
    assert mapped.samples[0].labels == {"a_b": "dash;dot"}


def test_unstorable_points_are_left_out_and_counted() -> None:
    many = {f"k{i}": "v" for i in range(70)}
    metrics = [
        {
            "name": "ok",
            "gauge": {
                "dataPoints": [
                    _point(1.0),
                    {"timeUnixNano": str(NOW_NS), "asDouble": "Infinity"},
                    _point(2.0, attributes=_attrs(**many)),
                    _point(3.0, attributes=_attrs(big="x" * 3000)),
                    {"timeUnixNano": str(NOW_NS + 3600 * 10**9), "asDouble": 1.0},
                    # No recorded value: the end of a series, neither kept nor refused.
                    {"timeUnixNano": str(NOW_NS), "asDouble": 0.0, "flags": 1},
                ]
            },
        },
        {
            "name": "delta.hist",
            "histogram": {"aggregationTemporality": 1, "dataPoints": [{"timeUnixNano": "1"}]},
        },
    ]
    mapped = _map(metrics)
    assert [s.value for s in mapped.samples] == [1.0]
    assert mapped.accepted_points == 1
    assert mapped.rejected_points == 5
    message = mapped.rejection_message
    assert "gauge.dataPoints[1].asDouble: Infinity cannot be stored" in message
    assert "70 labels; at most 64" in message
    assert "3000 characters" in message
    assert message.endswith("; and 2 more")


def test_unit_one_adds_ratio_to_gauges_only() -> None:
    start = NOW_NS - 10 * 1_000_000_000
    metrics = [
        {"name": "cpu.util", "unit": "1", "gauge": {"dataPoints": [_point(0.5)]}},
        # An up-down counter: stored as a gauge, but named as a sum (a count of things).
        {
            "name": "queue.depth",
            "unit": "1",
            "sum": {"aggregationTemporality": 2, "isMonotonic": False, "dataPoints": [_point(3)]},
        },
        {
            "name": "retries",
            "unit": "1",
            "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [_point(2)]},
        },
        {
            "name": "drops",
            "unit": "1",
            "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": False,
                "dataPoints": [_point(20, startTimeUnixNano=str(start))],
            },
        },
    ]
    mapped = _map(metrics)
    assert {s.name: s.value for s in mapped.samples} == {
        "cpu_util_ratio": 0.5,
        "queue_depth": 3.0,
        "retries_total": 2.0,
        "drops_per_second": 2.0,
    }


def _gauge(name: str, value: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "gauge": {"dataPoints": [_point(value, **extra)]}}


def test_names_over_the_ingest_bounds_are_left_out_and_counted() -> None:
    fits = "m" * MAX_METRIC_NAME_LENGTH
    key_fits = "k" * MAX_LABEL_NAME_LENGTH
    metrics = [
        _gauge("kept"),
        # The name as sent, far over the bound: every point of the metric is left out.
        {"name": "n" * 300_000, "gauge": {"dataPoints": [_point(1.0), _point(2.0)]}},
        # At the bound exactly: stored.
        _gauge(fits),
        # Within the bound as sent, over it once the unit's suffix is added.
        {"name": fits[:-3], "unit": "ms", "gauge": {"dataPoints": [_point(1.0)]}},
        # A histogram's stored names are longer by "_bucket".
        {
            "name": fits[:-2],
            "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [{"timeUnixNano": str(NOW_NS), "count": "1", "bucketCounts": ["1"]}],
            },
        },
        # A unit far over the bound.
        {"name": "u", "unit": "x" * 100_000, "gauge": {"dataPoints": [_point(1.0)]}},
        # An attribute key far over the bound: the point is left out, its neighbour kept.
        {
            "name": "labelled",
            "gauge": {
                "dataPoints": [
                    _point(1.0, attributes=_attrs(**{"k" * 200_000: "v"})),
                    _point(2.0, attributes=_attrs(**{key_fits: "v"})),
                    # Within the bound as sent, over it cleaned ("key_" before a digit).
                    _point(3.0, attributes=_attrs(**{"9" * MAX_LABEL_NAME_LENGTH: "v"})),
                ]
            },
        },
    ]
    mapped = _map(metrics)
    assert {(s.name, tuple(s.labels)): s.value for s in mapped.samples} == {
        ("kept", ()): 1.0,
        (fits, ()): 1.0,
        ("labelled", (key_fits,)): 2.0,
    }
    assert mapped.accepted_points == 3
    assert mapped.rejected_points == 2 + 1 + 1 + 1 + 2
    message = mapped.rejection_message
    assert "metrics[1].name: the metric name is 300000 characters long; at most 200" in message
    assert "metrics[3].name: the metric name with its unit and type suffixes is 210" in message
    assert "metrics[4].name: the metric name with its _bucket suffix is 205" in message
    assert message.endswith("; and 4 more")
    # The reasons give lengths, never the names themselves.
    assert len(message) < 1_000
    later = _map(metrics[5:])
    assert "metrics[0].name: the unit is 100000 characters long" in later.rejection_message
    assert (
        "gauge.dataPoints[0].attributes[0].key: the attribute key is 200000 characters long"
        in later.rejection_message
    )
    assert (
        "gauge.dataPoints[2].attributes[0].key: the label name it makes is 204 characters"
        in later.rejection_message
    )


def test_a_key_over_the_bound_beside_two_keys_of_one_name_leaves_its_point_out() -> None:
    # "a.b" and "a-b" join; the third key, 200 digits, is 204 characters once cleaned.
    attributes = _attrs(**{"a.b": "dot", "a-b": "dash", "9" * MAX_LABEL_NAME_LENGTH: "v"})
    mapped = _map([_gauge("up", attributes=attributes), _gauge("kept")])
    assert [s.name for s in mapped.samples] == ["kept"]
    assert "attributes[2].key: the label name it makes is 204" in mapped.rejection_message


def test_a_resource_or_scope_label_over_the_bounds_leaves_its_points_out() -> None:
    long_key = {"k" * (MAX_LABEL_NAME_LENGTH + 1): "v"}
    mapped = _map([_gauge("up")], resource=long_key)
    assert mapped.samples == []
    assert mapped.rejected_points == 1
    assert "resource.attributes[0].key: the attribute key is 201" in mapped.rejection_message
    request = _request([_gauge("up")], scope="s" * 3000)
    scoped = map_request(request, NOW_MS, MappingOptions(scope_label=True))
    assert scoped.samples == []
    assert "scope.name: label 'otel_scope_name' is 3000" in scoped.rejection_message
    # Without the scope label the scope's name is stored nowhere: no bound to apply.
    assert len(map_request(request, NOW_MS, MappingOptions()).samples) == 1


def test_otlp_and_the_json_ingest_share_one_bound_on_names() -> None:
    at = {"timestamp_ms": NOW_MS, "value": 1.0}
    SampleIn(name="m" * MAX_METRIC_NAME_LENGTH, labels={"k" * MAX_LABEL_NAME_LENGTH: "v"}, **at)
    metric_name("m" * MAX_METRIC_NAME_LENGTH, "", gauge=True)
    label_name("k" * MAX_LABEL_NAME_LENGTH)
    with pytest.raises(ValueError, match="at most 200 characters"):
        SampleIn(name="m" * (MAX_METRIC_NAME_LENGTH + 1), **at)
    with pytest.raises(ValueError, match="at most 200 characters"):
        SampleIn(name="m", labels={"k" * (MAX_LABEL_NAME_LENGTH + 1): "v"}, **at)
    with pytest.raises(NameTooLong):
        metric_name("m" * (MAX_METRIC_NAME_LENGTH + 1), "", gauge=True)
    with pytest.raises(NameTooLong):
        label_name("k" * (MAX_LABEL_NAME_LENGTH + 1))


@pytest.mark.parametrize(
    ("metric", "where", "problem"),
    [
        ({"name": "x"}, "", "has no data"),
        ({"name": "", "gauge": {}}, ".name", "is required"),
        ({"name": "...", "gauge": {}}, ".name", "no character"),
        (
            {"name": "x", "gauge": {"dataPoints": [{"asDouble": 1.0}]}},
            ".gauge.dataPoints[0].timeUnixNano",
            "is required",
        ),
        (
            {"name": "x", "gauge": {"dataPoints": [{"timeUnixNano": "5"}]}},
            ".gauge.dataPoints[0]",
            "has no value",
        ),
        (
            {"name": "x", "sum": {"dataPoints": [_point(1)]}},
            ".sum.aggregationTemporality",
            "0 is not 1 (delta) or 2 (cumulative)",
        ),
        (
            {
                "name": "x",
                "histogram": {
                    "aggregationTemporality": 2,
                    "dataPoints": [
                        {
                            "timeUnixNano": "5",
                            "count": "5",
                            "bucketCounts": ["1", "1"],
                            "explicitBounds": [3],
                        }
                    ],
                },
            },
            ".histogram.dataPoints[0].count",
            "is not the sum of bucketCounts",
        ),
        (
            {
                "name": "x",
                "histogram": {
                    "aggregationTemporality": 2,
                    "dataPoints": [
                        {
                            "timeUnixNano": "5",
                            "count": "2",
                            "bucketCounts": ["1", "1", "0"],
                            "explicitBounds": [3, 1],
                        }
                    ],
                },
            },
            ".histogram.dataPoints[0].explicitBounds[1]",
            "above the bound before it",
        ),
        (
            {
                "name": "x",
                "summary": {
                    "dataPoints": [
                        {"timeUnixNano": "5", "quantileValues": [{"quantile": 2, "value": 1}]}
                    ]
                },
            },
            ".summary.dataPoints[0].quantileValues[0].quantile",
            "not in [0, 1]",
        ),
    ],
)
def test_malformed_requests_name_the_field(
    metric: dict[str, Any], where: str, problem: str
) -> None:
    good = {"name": "fine", "gauge": {"dataPoints": [_point(1.0)]}}
    with pytest.raises(OtlpInvalid) as caught:
        _map([good, metric])
    assert caught.value.where == f"resourceMetrics[0].scopeMetrics[0].metrics[1]{where}"
    assert problem in caught.value.problem


def test_a_request_over_the_sample_bound_is_refused_whole() -> None:
    points = [_point(float(i), attributes=_attrs(i=str(i))) for i in range(11)]
    with pytest.raises(OtlpTooMany):
        _map([{"name": "many", "gauge": {"dataPoints": points}}], max_samples=10)


def test_gunzip_stops_at_its_bound_and_reads_concatenated_members() -> None:
    assert wire.gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    with pytest.raises(wire.WireError) as caught:
        wire.gunzip(gzip.compress(b"\x00" * 10_000), 1_000)
    assert caught.value.status == 413
    with pytest.raises(wire.WireError) as caught:
        wire.gunzip(b"not gzip", 1_000)
    assert caught.value.status == 400


def test_samples_are_plain_store_samples() -> None:
    mapped = _map([{"name": "up", "gauge": {"dataPoints": [_point(1)]}}])
    assert mapped.samples == [Sample("up", {}, NOW_MS, 1.0)]
