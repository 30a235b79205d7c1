import CustodyCore
import CustodyLog
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// docs/benchmarks.md R8: with tokens configured, every request but the probes needs a bearer token of a
/// high enough role; refusals append nothing; a token is never echoed or recorded.
@Suite struct AuthenticationTests {
    static let tokens: [String: AccessRole] = ["ingest-secret-1": .ingest, "operator-secret-2": .operator, "admin-secret-3": .admin]

    func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func rolesGateTheRoutes() async throws {
        try await ServerFixture.run(.router, tokens: Self.tokens) { runtime, client in
            let before = await runtime.log.lastSeq
            let anonymous = try await client.call(.post, "/api/logs", json: #"{"source":"a"}"#)
            #expect(anonymous.status == .unauthorized && anonymous.errorCode == "unauthorized")
            #expect(anonymous.headers[HTTPField.Name("www-authenticate")!]?.hasPrefix("Bearer") == true)
            let wrong = try await client.call(.post, "/api/logs", json: #"{"source":"a"}"#, headers: bearer("nope"))
            #expect(wrong.status == .unauthorized)
            #expect(await runtime.log.lastSeq == before)

            #expect(try await client.call(.get, "/healthz").status == .ok)
            #expect(try await client.call(.get, "/readyz").status == .ok)

            let ingested = try await client.call(.post, "/api/logs", json: #"{"trace_id":"auth-1","source":"a"}"#, headers: bearer("ingest-secret-1"))
            #expect(ingested.status == .ok)
            let ingestReads = try await client.call(.get, "/api/traces/auth-1", headers: bearer("ingest-secret-1"))
            #expect(ingestReads.status == .forbidden && ingestReads.errorCode == "forbidden")
            #expect(try await client.call(.get, "/api/traces/auth-1", headers: bearer("operator-secret-2")).status == .ok)
            #expect(try await client.call(.get, "/api/admin/stats", headers: bearer("operator-secret-2")).status == .forbidden)
            #expect(try await client.call(.get, "/api/admin/stats", headers: bearer("admin-secret-3")).status == .ok)
            #expect(try await client.call(.post, "/api/logs", json: #"{"source":"b"}"#, headers: bearer("admin-secret-3")).status == .ok)

            // No token appears in the log.
            var next: UInt64 = 1
            while true {
                let records = try await runtime.log.read(from: next, maxRecords: 10_000)
                guard let last = records.last else { break }
                for record in records {
                    let text = String(buffer: record.payload)
                    for token in Self.tokens.keys { #expect(!text.contains(token)) }
                }
                next = last.seq + 1
            }
        }
    }

    @Test func withoutTokensEverythingIsOpen() async throws {
        try await ServerFixture.run(.router) { _, client in
            let stats = try await client.call(.get, "/api/admin/stats")
            #expect(stats.status == .ok)
        }
    }
}
