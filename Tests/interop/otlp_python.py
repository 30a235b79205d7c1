"""The stock OpenTelemetry Python SDK sends traces to a running `custody serve` with its exporters'
defaults: OTLP/HTTP protobuf (to the API's port, and to 4318 with no endpoint configured), OTLP
JSON, OTLP/gRPC to 4317 (insecure, gzip off and on) and Zipkin v2 JSON; each trace is read back
through Custody's API and every mapped field checked, and exports sent again are taken once.
Usage: otlp_python.py BASE_URL"""
import base64
import json
import sys
import urllib.request

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from grpc import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

BASE = sys.argv[1].rstrip("/")


class Recorder(SpanExporter):
    """Keeps the finished spans, to send them again as OTLP JSON."""

    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def make_trace(service, exporter, recorder):
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(recorder))
    tracer = provider.get_tracer("interop")
    with tracer.start_as_current_span("createAgent", attributes={"order": "o-1", "attempt": 3, "ok": True}) as parent:
        parent.add_event("validated", {"rows": 12})
        with tracer.start_as_current_span("callDataFactory", attributes={"custody.stage": "outbound_call"}):
            pass
        with tracer.start_as_current_span("writeRows") as failing:
            failing.set_status(Status(StatusCode.ERROR, "disk full"))
    provider.shutdown()
    return format(parent.get_span_context().trace_id, "032x")


def get(path):
    with urllib.request.urlopen(BASE + path) as response:
        return json.load(response)


def exported_spans(trace_id):
    """The trace's spans that an exporter sent (not the server's own request spans)."""
    document = get("/api/traces/" + trace_id)
    assert document["ok"], document
    return document, [span for span in document["data"]["spans"] if span["source"] != "orchestrator"]


def check(trace_id, service):
    document, exported = exported_spans(trace_id)
    assert len(exported) == 3, [span["operation"] for span in exported]
    spans = {span["operation"]: span for span in exported}
    assert set(spans) == {"createAgent", "callDataFactory", "writeRows"}, spans.keys()
    parent, call, failing = spans["createAgent"], spans["callDataFactory"], spans["writeRows"]
    for span in spans.values():
        assert span["source"] == service, span
        assert span["trace_id"] == trace_id, span
        assert len(span["span_id"]) == 16 and span["span_id"] == span["span_id"].lower(), span
    assert parent["parent_span_id"] is None, parent
    assert call["parent_span_id"] == parent["span_id"] and failing["parent_span_id"] == parent["span_id"]
    assert parent["stage"] == "span" and call["stage"] == "outbound_call" and failing["stage"] == "error"
    assert parent["duration_ms"] >= 0
    details = parent["details"]
    assert details["attributes"] == {"order": "o-1", "attempt": 3, "ok": True}, details
    assert details["events"][0]["name"] == "validated" and details["events"][0]["attributes"] == {"rows": 12}
    assert details["resource"]["deployment"] == "test" and details["scope"]["name"] == "interop"
    assert details["kind"] == "SPAN_KIND_INTERNAL"
    assert failing["details"]["status"] == {"code": "STATUS_CODE_ERROR", "message": "disk full"}
    assert failing["details"]["error"] == "disk full"
    assert document["data"]["summary"]["error_count"] >= 1


# 1. Protobuf, through the SDK's own exporter, pointed at Custody and nothing else configured.
recorder = Recorder()
trace_id = make_trace("agent-factory", OTLPSpanExporter(endpoint=BASE + "/v1/traces"), recorder)
check(trace_id, "agent-factory")

# 2. The same kind of trace in the OTLP JSON encoding (hex ids), posted by hand.
recorder = Recorder()
class Discard(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS
json_trace = make_trace("data-factory", Discard(), recorder)
message = json_format.MessageToDict(encode_spans(recorder.spans))
for resource_spans in message["resourceSpans"]:
    for scope_spans in resource_spans["scopeSpans"]:
        for span in scope_spans["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in span:
                    span[key] = base64.b64decode(span[key]).hex().upper()
request = urllib.request.Request(BASE + "/v1/traces", data=json.dumps(message).encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request) as response:
    assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
check(json_trace, "data-factory")

# 3. OTLP/gRPC with the exporter's defaults (localhost:4317), insecure, without and with gzip;
#    then the same spans exported again: acknowledged, taken once.
grpc_traces = []
for service, compression in (("services-factory", None), ("ops-factory", Compression.Gzip)):
    recorder = Recorder()
    exporter = GRPCSpanExporter(insecure=True, compression=compression)
    grpc_trace = make_trace(service, exporter, recorder)
    check(grpc_trace, service)
    # The provider's shutdown closed that exporter: a new one re-sends, as a restarted agent would.
    assert GRPCSpanExporter(insecure=True, compression=compression).export(recorder.spans) == SpanExportResult.SUCCESS
    check(grpc_trace, service)
    grpc_traces.append(grpc_trace)

# 4. OTLP/HTTP with no endpoint at all: the exporter's default, http://localhost:4318/v1/traces.
recorder = Recorder()
default_http = make_trace("ui-factory", OTLPSpanExporter(), recorder)
check(default_http, "ui-factory")


# 5. Zipkin v2 JSON through the OpenTelemetry Zipkin exporter, to POST /api/v2/spans.
def check_zipkin(trace_id, service):
    document, exported = exported_spans(trace_id)
    assert len(exported) == 3, [span["operation"] for span in exported]
    spans = {span["operation"]: span for span in exported}
    assert set(spans) == {"createAgent", "callDataFactory", "writeRows"}, spans.keys()
    parent, call, failing = spans["createAgent"], spans["callDataFactory"], spans["writeRows"]
    for span in spans.values():
        assert span["source"] == service and span["trace_id"] == trace_id, span
        assert len(span["span_id"]) == 16 and span["span_id"] == span["span_id"].lower(), span
    assert parent["parent_span_id"] is None, parent
    assert call["parent_span_id"] == parent["span_id"] and failing["parent_span_id"] == parent["span_id"]
    assert parent["stage"] == "span" and call["stage"] == "outbound_call" and failing["stage"] == "error", spans
    assert parent["duration_ms"] >= 0 and parent["timestamp"].endswith("Z")
    tags = parent["details"]["tags"]
    # The Zipkin exporter sends attributes as string tags.
    assert tags["order"] == "o-1" and tags["attempt"] == "3" and tags["ok"] == "true", tags
    assert "custody.stage" not in call["details"].get("tags", {}), call
    annotations = parent["details"]["annotations"]
    assert len(annotations) == 1 and "validated" in annotations[0]["value"] and annotations[0]["timestamp"] > 0, annotations
    assert failing["details"]["error"] == "disk full", failing["details"]
    assert document["data"]["summary"]["error_count"] >= 1


recorder = Recorder()
zipkin = ZipkinExporter(endpoint=BASE + "/api/v2/spans")
zipkin_trace = make_trace("delivery-factory", zipkin, recorder)
check_zipkin(zipkin_trace, "delivery-factory")
assert ZipkinExporter(endpoint=BASE + "/api/v2/spans").export(recorder.spans) == SpanExportResult.SUCCESS
check_zipkin(zipkin_trace, "delivery-factory")

print(
    "OTLP interop: traces read back with every field as sent — OTLP/HTTP protobuf %s and JSON %s, OTLP/gRPC %s (gzip %s), "
    "OTLP/HTTP on 4318 %s, Zipkin %s; re-sent exports taken once"
    % (trace_id, json_trace, grpc_traces[0], grpc_traces[1], default_http, zipkin_trace)
)
