"""Calls Custody over gRPC with Python's grpcio and stubs generated from schema/custody.proto.

Every check fails loudly: a missing field, a wrong status or a stream that does not deliver.
"""
import sys
import threading

import grpc
from google.protobuf import struct_pb2

import custody_pb2 as pb
import custody_pb2_grpc as rpc

target = sys.argv[1]
channel = grpc.insecure_channel(target)
grpc.channel_ready_future(channel).result(timeout=10)
tasks = rpc.TaskOpsStub(channel)
logs = rpc.LogOpsStub(channel)
stream = rpc.TraceStreamStub(channel)

payload = struct_pb2.Struct()
payload.update({"title": "logo", "size": 3})
reply, call = tasks.createTask.with_call(
    pb.CreateTaskRequest(order_id="py-order", payload=payload), metadata=[("x-trace-id", "py-trace-1")]
)
assert reply.created and reply.task.status == "pending" and reply.task.order_id == "py-order", reply
assert reply.task.payload["title"] == "logo", reply.task.payload
echoed = dict(call.initial_metadata()).get("x-trace-id")
assert echoed == "py-trace-1", call.initial_metadata()

change = tasks.updateTaskStatus(pb.UpdateTaskStatusRequest(task_id=reply.task.uuid, status="in_progress"))
assert change.previous_status == "pending" and change.status == "in_progress", change
assert tasks.getTask(pb.GetTaskRequest(uuid=reply.task.uuid)).task.status == "in_progress"

# Errors: NOT_FOUND with docs/api.md's code in the trailers; INVALID_ARGUMENT naming the field.
try:
    tasks.updateTaskStatus(pb.UpdateTaskStatusRequest(task_id="nope", status="complete"))
    raise AssertionError("an unknown task was updated")
except grpc.RpcError as error:
    assert error.code() == grpc.StatusCode.NOT_FOUND, error
    assert dict(error.trailing_metadata()).get("custody-error-code") == "task_not_found", error.trailing_metadata()
try:
    tasks.createTask(pb.CreateTaskRequest(payload=payload))
    raise AssertionError("a task without an order was created")
except grpc.RpcError as error:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert dict(error.trailing_metadata()).get("custody-error-field") == "order_id", error.trailing_metadata()

# The live stream: from a position before the spans, then live ones.
details = struct_pb2.Struct()
details.update({"attempt": 1})
first = logs.recordLog(pb.RecordLogRequest(entries=[
    pb.LogEntry(trace_id="py-trace-2", source="python", operation="first", stage="before_rpc", details=details),
]))
received = []
done = threading.Event()


def consume():
    request = pb.LiveRequest(source=["python"], since_seq=first.first_seq - 1)
    for message in stream.Live(request, timeout=20):
        if message.WhichOneof("event") == "trace":
            received.append(message.trace)
        if len(received) == 3:
            break
    done.set()


consumer = threading.Thread(target=consume)
consumer.start()
recorded = logs.recordLog(pb.RecordLogRequest(entries=[
    pb.LogEntry(trace_id="py-trace-2", source="python", operation=f"live-{n}", duration_ms=2.5) for n in range(2)
]))
assert recorded.accepted == 2 and recorded.last_seq == recorded.first_seq + 1, recorded
assert done.wait(20), f"the stream delivered {len(received)} spans"
consumer.join()
assert [span.operation for span in received] == ["first", "live-0", "live-1"], [span.operation for span in received]
assert received[0].details["attempt"] == 1 and received[0].seq == first.first_seq, received[0]

trace = logs.getTrace(pb.GetTraceRequest(trace_id="py-trace-2"))
operations = [span.operation for span in trace.spans if span.source == "python"]
assert operations == ["first", "live-0", "live-1"], operations
assert trace.summary.span_count >= 3 and "python" in trace.summary.sources, trace.summary
print(f"grpcio: createTask, updateTaskStatus, getTask, errors, recordLog, TraceStream.Live ({len(received)} spans) and getTrace checked against {target}")
