import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Mission Control's files: served with the right types and caching headers, nothing outside
/// their folder, no token needed for them while the API still needs one.
@Suite struct DashboardFilesTests {
    @Test func filesAreServedWithTypesAndCachingHeaders() async throws {
        try await ServerFixture.run(.router) { _, client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(response.headers[.cacheControl] == "no-cache")
                #expect(String(buffer: response.body).contains("Mission Control"))
                #expect(String(buffer: response.body).contains(#"<script type="module" src="/ui/app.js">"#))
            }
            for (path, type) in [
                ("/ui/app.js", "application/javascript"), ("/ui/style.css", "text/css"), ("/ui/timeline.js", "application/javascript"),
            ] {
                let etag = try await client.execute(uri: path, method: .get) { response -> String? in
                    #expect(response.status == .ok, "\(path)")
                    #expect(response.headers[.contentType]?.hasPrefix(type) == true, "\(path): \(response.headers[.contentType] ?? "")")
                    #expect(response.headers[.cacheControl] == "no-cache", "\(path)")
                    #expect(response.body.readableBytes > 500, "\(path)")
                    return response.headers[.eTag]
                }
                let tag = try #require(etag, "\(path) has no ETag")
                // Revalidation: the same file answers 304 with no body.
                try await client.execute(uri: path, method: .get, headers: [.ifNoneMatch: tag]) { response in
                    #expect(response.status == .notModified, "\(path)")
                    #expect(response.body.readableBytes == 0)
                }
            }
            try await client.execute(uri: "/ui/app.js", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
            }
        }
    }

    /// Paths that try to leave the folder, and files that do not exist, are never served.
    @Test func nothingOutsideTheFolder() async throws {
        try await ServerFixture.run(.router) { _, client in
            for path in [
                "/ui/../../Package.swift", "/ui/%2e%2e/%2e%2e/Package.swift", "/..%2f..%2fPackage.swift", "/ui/..%2F..%2FDashboardFiles.swift",
                "/ui/nothing.js", "/Package.swift", "/ui/", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            ] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound, "\(path): \(response.status)")
                    #expect(!String(buffer: response.body).contains("swift-tools-version"), "\(path)")
                    #expect(!String(buffer: response.body).contains("root:"), "\(path)")
                }
            }
            // Files are for reading only.
            try await client.execute(uri: "/ui/app.js", method: .post, body: ByteBuffer(string: "x")) { response in
                #expect(response.status == .notFound || response.status == .methodNotAllowed)
            }
        }
    }

    /// With tokens set, the page loads without one (it holds no data); the API it calls does not.
    @Test func filesNeedNoTokenButTheAPIDoes() async throws {
        try await ServerFixture.run(.router, tokens: ["operator-token": .operator]) { _, client in
            let page = try await client.execute(uri: "/", method: .get) { $0.status }
            let module = try await client.execute(uri: "/ui/app.js", method: .get) { $0.status }
            let withoutToken = try await client.execute(uri: "/api/traces", method: .get) { $0.status }
            let withToken = try await client.execute(uri: "/api/traces", method: .get, headers: [.authorization: "Bearer operator-token"]) {
                $0.status
            }
            #expect(page == .ok && module == .ok)
            #expect(withoutToken == .unauthorized && withToken == .ok)
        }
    }
}
