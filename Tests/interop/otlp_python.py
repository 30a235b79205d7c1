"""The stock OpenTelemetry Python SDK sends a trace to a running `custody serve` (protobuf through
the OTLP/HTTP exporter, then the same request in the OTLP JSON encoding); the trace is read back
through Custody's API and every field checked. Usage: otlp_python.py BASE_URL"""
import base64
import json
import sys
import urllib.request

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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


def check(trace_id, service):
    document = get("/api/traces/" + trace_id)
    assert document["ok"], document
    spans = {span["operation"]: span for span in document["data"]["spans"]}
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
print("OTLP interop: protobuf trace %s and JSON trace %s read back, every field as sent" % (trace_id, json_trace))
