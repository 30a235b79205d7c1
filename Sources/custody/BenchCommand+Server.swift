import ArgumentParser
import AsyncHTTPClient
import CustodyClient
import CustodyLog
import CustodyLogTesting
import CustodyOTLP
import CustodyRPC
import Foundation
import GRPCCore
import GRPCProtobuf
import Histogram
import NIOCore
import NIOHTTP1
import SwiftProtobuf

/// `custody bench ingest --server URL`: POST /api/logs from `--concurrency` connections, each
/// request `--batch` spans (one object when the batch is 1), for `--events` spans or for
/// `--duration` seconds; reports what the server sustained and what it says about itself.
extension BenchCommand.Ingest {
    struct ServerIngestReport: Codable {
        /// `http`, `otlp`, `otlp-grpc` or `grpc`.
        var transport: String
        var server: String
        var spans: Int
        var requests: Int
        var refused: Int
        var failed: Int
        var concurrency: Int
        var batch: Int
        var eventBytes: Int
        var seconds: Double
        var spansPerSecond: Double
        var requestsPerSecond: Double
        var megabytesPerSecond: Double
        /// Per request, from sending to the acknowledgement.
        var latencyMicroseconds: LatencySummary
        var worstProjectionLagEvents: Int
        var worstProjectionLagSeconds: Double
        /// From the start until the projections held every span.
        var secondsUntilProjectionsCaughtUp: Double
        var bytesOnDisk: Int
        var compressionRatio: Double
        var serverRSSBytes: Int?

        static func transportName(_ transport: String) -> String {
            switch transport {
            case "grpc": "gRPC recordLog"
            case "otlp": "OTLP/HTTP export"
            case "otlp-grpc": "OTLP/gRPC export"
            default: "HTTP POST /api/logs"
            }
        }

        var text: String {
            let l = latencyMicroseconds
            return """
                \(Self.transportName(transport)) ingest to \(server): \(spans) spans in \(requests) requests (\(batch) per request, ~\(eventBytes) B each), \(concurrency) connections
                  throughput   \(String(format: "%.0f", spansPerSecond)) spans/s, \(String(format: "%.0f", requestsPerSecond)) requests/s, \(String(format: "%.1f", megabytesPerSecond)) MB/s of span JSON, \(String(format: "%.2f", seconds)) s
                  ack latency  p50 \(formatMicros(l.p50))  p90 \(formatMicros(l.p90))  p99 \(formatMicros(l.p99))  p99.9 \(formatMicros(l.p999))  max \(formatMicros(l.max))
                  refused      \(refused) (429/503, retried)  failed \(failed)
                  projections  worst lag \(worstProjectionLagEvents) events, \(String(format: "%.2f", worstProjectionLagSeconds)) s; caught up \(String(format: "%.2f", secondsUntilProjectionsCaughtUp)) s after the start
                  server       \(formatBytes(Int64(bytesOnDisk))) on disk, compression \(String(format: "%.2f", compressionRatio))×\(serverRSSBytes.map { ", RSS \(formatBytes(Int64($0)))" } ?? "")
                """
        }
    }

    /// Mixed into every seed, once per process: two runs of `bench ingest` against one server send
    /// different traces and spans (with the same ids, a run would add to the traces of the one
    /// before — reads of old trace summaries the projector never does on fresh traffic — and the
    /// span cache would drop the spans it still holds as re-sent).
    static let runSalt = UInt64.random(in: 0...UInt64.max)

    /// `seed` picks the spans' ids: runs of one process with different seeds send different spans
    /// of the same shape (the same seed twice would be deduplicated).
    func measureServer(_ base: String, seed: UInt64 = 42) async throws -> ServerIngestReport {
        let url = base.hasSuffix("/") ? String(base.dropLast()) : base
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                timeout: .init(connect: .seconds(5), read: .seconds(60)),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
            )
        )
        do {
            let report = try await measure(url, client, transport: otlp ? "otlp" : "http", seed: seed)
            try await client.shutdown()
            return report
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// How one request went.
    enum Outcome {
        case acknowledged, refused, failed
    }

    /// The same spans as `recordLog` calls over gRPC to `target` (`host:port`); the server's
    /// figures (projection lag, disk) still come from its HTTP API at `base`.
    func measureRPC(_ target: String, base: String) async throws -> ServerIngestReport {
        let url = base.hasSuffix("/") ? String(base.dropLast()) : base
        let parts = target.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--rpc takes HOST:PORT, e.g. 127.0.0.1:8788") }
        let connection = try CustodyRPCConnection(host: String(parts[0]), port: port, timeout: .seconds(60))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { connection.close() }
        do {
            let report = try await measure(url, client, transport: "grpc", target: target, connection: connection)
            try await client.shutdown()
            return report
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// The same OTLP exports as `TraceService/Export` calls over gRPC to `target` (`host:port`),
    /// `--concurrency` streams multiplexed on `--otlp-grpc-connections` HTTP/2 connections (one
    /// by default, as an exporter keeps); the server's figures still come from its HTTP API at
    /// `base`.
    func measureOTLPGRPC(_ target: String, base: String, seed: UInt64) async throws -> ServerIngestReport {
        let url = base.hasSuffix("/") ? String(base.dropLast()) : base
        let parts = target.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--otlp-grpc takes HOST:PORT, e.g. 127.0.0.1:4317") }
        let connections = try (0..<otlpGRPCConnections).map { _ in
            try CustodyRPCConnection(host: String(parts[0]), port: port, timeout: .seconds(60))
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { for connection in connections { connection.close() } }
        do {
            let report = try await measure(
                url,
                client,
                transport: "otlp-grpc",
                target: target,
                connection: connections[0],
                otlpConnections: connections,
                seed: seed
            )
            try await client.shutdown()
            return report
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func measure(
        _ url: String,
        _ client: HTTPClient,
        transport: String,
        target: String? = nil,
        connection: CustodyRPCConnection? = nil,
        otlpConnections: [CustodyRPCConnection] = [],
        seed: UInt64 = 42
    ) async throws -> ServerIngestReport {
        // Bodies are made before the clock starts: the figure is the server's, not the generator's.
        let requestsWanted = (events + batch - 1) / batch
        let distinctBodies = min(requestsWanted, 4096)
        var random = SplitMix64(seed: seed ^ Self.runSalt)
        var bodies: [ByteBuffer] = []
        var rawBytes = 0
        let exportsOTLP = transport.hasPrefix("otlp")
        for body in 0..<distinctBodies {
            if exportsOTLP {
                let export = OTLPSamples.export(body: body, batch: batch, random: &random)
                rawBytes += export.readableBytes
                bodies.append(export)
                continue
            }
            var spans: [ByteBuffer] = []
            for i in 0..<batch {
                spans.append(
                    SamplePayloads.span(
                        body * batch + i,
                        size: eventBytes,
                        spansPerTrace: spansPerTrace,
                        traceSalt: UInt64(body) &+ (seed ^ Self.runSalt) << 20,
                        random: &random
                    )
                )
            }
            var buffer = ByteBuffer()
            if batch == 1 {
                var only = spans[0]
                buffer.writeBuffer(&only)
            } else {
                buffer.writeString("[")
                for (i, var span) in spans.enumerated() {
                    if i > 0 { buffer.writeString(",") }
                    buffer.writeBuffer(&span)
                }
                buffer.writeString("]")
            }
            rawBytes += spans.reduce(0) { $0 + $1.readableBytes }
            bodies.append(buffer)
        }
        let bytesPerRequest = Double(rawBytes) / Double(distinctBodies)
        // Over gRPC, the same spans as RecordLogRequest messages (made from the same JSON).
        let messages: [Custody_V1_RecordLogRequest] =
            try connection == nil || exportsOTLP
            ? []
            : bodies.map { body in
                let text = batch == 1 ? "{\"entries\":[\(String(buffer: body))]}" : "{\"entries\":\(String(buffer: body))}"
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = true  // as POST /api/logs ignores them
                var request = try Custody_V1_RecordLogRequest(jsonString: text, options: options)
                // Details as JSON text, as the SDK sends them.
                for index in request.entries.indices where request.entries[index].hasDetails {
                    request.entries[index].detailsJson = try request.entries[index].details.jsonString()
                    request.entries[index].clearDetails()
                }
                return request
            }
        let requestBodies = bodies
        let concurrency = concurrency
        let otlp = otlp
        let deadline: ContinuousClock.Instant? = duration.map { .now + .seconds($0) }
        let sent = Counter()
        let refused = Counter()
        let failed = Counter()
        // Several servers (`--server URL,URL`: the nodes of a cluster) share the workers; each
        // node's lag is measured against the newest head any node knows.
        let urls = url.split(separator: ",").map { String($0.hasSuffix("/") ? $0.dropLast() : $0) }
        let lagSampler = Task { () -> (events: Int, seconds: Double) in
            var worst = (events: 0, seconds: 0.0)
            while !Task.isCancelled {
                let lag = await Self.clusterLag(client, urls)
                worst.events = max(worst.events, lag.events)
                worst.seconds = max(worst.seconds, lag.seconds)
                try? await Task.sleep(for: .milliseconds(250))
            }
            return worst
        }
        let progress = ProgressLine(total: duration.map { $0 * 1000 } ?? requestsWanted * batch, unit: duration == nil ? "spans" : "ms")
        let progressTicker = Task {
            let begin = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                if duration != nil {
                    progress.set(Int((ContinuousClock.now - begin).inMilliseconds))
                } else {
                    progress.set(await sent.acknowledged * batch)
                }
            }
        }
        let started = ContinuousClock.now
        let histogram = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    var index = worker
                    while true {
                        if let deadline {
                            if ContinuousClock.now >= deadline { break }
                        } else if await sent.take(limit: requestsWanted) == false {
                            break
                        }
                        let t0 = ContinuousClock.now
                        let outcome: Outcome
                        if let connection, exportsOTLP {
                            let through = otlpConnections.isEmpty ? connection : otlpConnections[worker % otlpConnections.count]
                            outcome = await Self.sendOTLP(requestBodies[index % requestBodies.count], through)
                        } else if let connection {
                            outcome = await Self.sendRPC(messages[index % messages.count], connection)
                        } else {
                            var request = HTTPClientRequest(url: urls[worker % urls.count] + (otlp ? "/v1/traces" : "/api/logs"))
                            request.method = .POST
                            request.headers.add(name: "content-type", value: otlp ? "application/x-protobuf" : "application/json")
                            if let authorization = ProcessEnvironment.authorization {
                                request.headers.add(name: "authorization", value: authorization)
                            }
                            request.body = .bytes(requestBodies[index % requestBodies.count])
                            let response = try await client.execute(request, timeout: .seconds(60))
                            _ = try await response.body.collect(upTo: 1 << 24)
                            outcome = response.status.code == 200 ? .acknowledged : [429, 503].contains(response.status.code) ? .refused : .failed
                        }
                        index += concurrency
                        let elapsed = ContinuousClock.now - t0
                        switch outcome {
                        case .acknowledged:
                            _ = histogram.record(
                                UInt64(max(elapsed.components.attoseconds / 1_000_000_000_000 + elapsed.components.seconds * 1_000_000, 1))
                            )
                            if deadline != nil { await sent.add() }
                        case .refused:
                            await refused.add()
                            if deadline == nil { await sent.giveBack() }
                            try await Task.sleep(for: .milliseconds(50))
                        case .failed:
                            await failed.add()
                        }
                    }
                    return histogram
                }
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for try await histogram in group { merged.add(histogram) }
            return merged
        }
        let elapsed = (ContinuousClock.now - started).inSeconds
        progressTicker.cancel()
        progress.finish()
        // Wait for the projections to hold everything, then read the server's own figures.
        var caughtUp = elapsed
        while true {
            if await Self.clusterLag(client, urls).caughtUp {
                caughtUp = (ContinuousClock.now - started).inSeconds
                break
            }
            if (ContinuousClock.now - started).inSeconds > elapsed + 600 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        lagSampler.cancel()
        let worst = await lagSampler.value
        let stats = try await Self.stats(client, urls[0])
        let log = stats["log"] as? [String: Any] ?? [:]
        let requests = histogram.totalCount
        let spans = Int(requests) * batch
        return ServerIngestReport(
            transport: transport,
            server: target ?? url,
            spans: spans,
            requests: Int(requests),
            refused: await refused.value,
            failed: await failed.value,
            concurrency: concurrency,
            batch: batch,
            eventBytes: eventBytes,
            seconds: elapsed,
            spansPerSecond: Double(spans) / elapsed,
            requestsPerSecond: Double(requests) / elapsed,
            megabytesPerSecond: Double(requests) * bytesPerRequest / elapsed / 1e6,
            latencyMicroseconds: .init(histogram),
            worstProjectionLagEvents: worst.events,
            worstProjectionLagSeconds: worst.seconds,
            secondsUntilProjectionsCaughtUp: caughtUp,
            bytesOnDisk: log["bytes_on_disk"] as? Int ?? 0,
            compressionRatio: log["compression_ratio"] as? Double ?? 0,
            serverRSSBytes: (stats["process"] as? [String: Any])?["rss_bytes"] as? Int
        )
    }

    /// One `recordLog` call; RESOURCE_EXHAUSTED (overloaded) counts as refused, as 429 does over HTTP.
    static func sendRPC(_ message: Custody_V1_RecordLogRequest, _ connection: CustodyRPCConnection) async -> Outcome {
        do {
            _ = try await Custody_V1_LogOps.Client(wrapping: connection.client).recordLog(message, options: connection.options)
            return .acknowledged
        } catch let error as RPCError where error.code == .resourceExhausted || error.code == .unavailable {
            return .refused
        } catch {
            return .failed
        }
    }

    /// One `TraceService/Export` call of an encoded export request; RESOURCE_EXHAUSTED and
    /// UNAVAILABLE count as refused (what OTLP exporters retry), rejected spans as failed.
    static func sendOTLP(_ body: ByteBuffer, _ connection: CustodyRPCConnection) async -> Outcome {
        var metadata: Metadata = [:]
        if let authorization = ProcessEnvironment.authorization { metadata.addString(authorization, forKey: "authorization") }
        do {
            let rejected = try await connection.client.unary(
                request: ClientRequest(message: body, metadata: metadata),
                descriptor: otlpExport,
                serializer: EncodedMessageSerializer(),
                deserializer: ProtobufDeserializer<Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse>(),
                options: connection.options
            ) { try $0.message.partialSuccess.rejectedSpans }
            return rejected == 0 ? .acknowledged : .failed
        } catch let error as RPCError where error.code == .resourceExhausted || error.code == .unavailable {
            return .refused
        } catch {
            return .failed
        }
    }

    static let otlpExport = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")

    /// A message that is already encoded, sent as it is.
    struct EncodedMessageSerializer: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: ByteBuffer) throws -> Bytes { Bytes(message.readableBytesView) }
    }

    static func stats(_ client: HTTPClient, _ url: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url + "/api/admin/stats")
        if let authorization = ProcessEnvironment.authorization { request.headers.add(name: "authorization", value: authorization) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        return json?["data"] as? [String: Any] ?? [:]
    }

    /// A count shared by the workers.
    actor Counter {
        private(set) var value = 0
        /// Acknowledged requests, for the progress line.
        private(set) var acknowledged = 0
        func add() { value += 1 }
        /// One more acknowledged; with a time limit (not `countingOnly`) it also counts as sent.
        func add(countingOnly: Bool) {
            acknowledged += 1
            if !countingOnly { value += 1 }
        }
        /// Takes one of `limit` (false when all are taken).
        func take(limit: Int) -> Bool {
            guard value < limit else { return false }
            value += 1
            return true
        }
        func giveBack() { value -= 1 }
    }

    /// How far the projections of the servers at `urls` are behind the newest head any of them
    /// knows: the worst node's events and seconds, and whether every node has applied that head.
    static func clusterLag(_ client: HTTPClient, _ urls: [String]) async -> (events: Int, seconds: Double, caughtUp: Bool) {
        var heads: [Int] = []
        var applied: [Int] = []
        var seconds = 0.0
        for url in urls {
            guard let stats = try? await stats(client, url), let projections = stats["projections"] as? [String: Any] else {
                return (0, 0, false)
            }
            heads.append((stats["log"] as? [String: Any])?["last_seq"] as? Int ?? 0)
            applied.append(projections["applied_seq"] as? Int ?? 0)
            seconds = max(seconds, projections["lag_seconds"] as? Double ?? 0)
        }
        let head = heads.max() ?? 0
        let events = applied.map { head - $0 }.max() ?? 0
        return (events, seconds, events == 0)
    }
}
