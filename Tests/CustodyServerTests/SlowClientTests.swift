import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP connection to the server, for what an HTTP client would not send.
struct RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends bytes; false once the server has closed the connection.
    func send(_ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } > 0
    }

    /// Whether the server has closed its side (a read returns end of file or an error).
    func isClosedByServer() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(descriptor, &buffer, buffer.count, 0)
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    /// The answer to a request, polled without blocking a thread (at most `seconds`): the tests
    /// run in parallel on two cooperative threads, and the server answering needs them too.
    func answer(within seconds: Int = 5) async throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let n = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { return String(decoding: buffer[..<n], as: UTF8.self) }
            if n == 0 { return "" }
            try await Task.sleep(for: .milliseconds(20))
        }
        return ""
    }

    func close() { _ = Glibc.close(descriptor) }
}

@Suite(.timeLimit(.minutes(1))) struct SlowClientTests {
    /// A request head trickled a byte at a time is cut off at the deadline; a normal request on
    /// another connection is answered meanwhile.
    @Test func aTrickledRequestIsCutOffAtTheDeadline() async throws {
        // 3 s, not 1: the healthy request below must be answered within the same deadline while
        // the suite's CPU-heavy log tests share the two threads.
        var limits = ServerLimits()
        limits.requestDeadline = .seconds(3)
        try await ServerFixture.run(.live, limits: limits) { _, client in
            let port = try #require(client.port)
            let slow = try RawConnection(port: port)
            defer { slow.close() }
            #expect(slow.send("POST /api/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
            let started = ContinuousClock.now
            var closed = false
            // Waits are generous: the suite shares two threads with CPU-heavy log tests.
            while ContinuousClock.now - started < .seconds(15) {
                if !slow.send("X") || slow.isClosedByServer() {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(closed, "the trickling connection was not closed")
            #expect(ContinuousClock.now - started >= .milliseconds(2900))
            // Meanwhile a whole request on a new connection is answered.
            let healthy = try RawConnection(port: port)
            defer { healthy.close() }
            #expect(healthy.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            #expect(try await healthy.answer(within: 30).hasPrefix("HTTP/1.1 200"))
        }
    }

    /// A connection that opens and sends nothing is closed too.
    @Test func aSilentConnectionIsClosed() async throws {
        var limits = ServerLimits()
        limits.requestDeadline = .seconds(1)
        try await ServerFixture.run(.live, limits: limits) { _, client in
            let silent = try RawConnection(port: try #require(client.port))
            defer { silent.close() }
            let started = ContinuousClock.now
            var closed = false
            while ContinuousClock.now - started < .seconds(5) {
                if silent.isClosedByServer() {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(closed)
        }
    }
}
