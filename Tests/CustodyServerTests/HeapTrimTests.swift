import Logging
import ServiceLifecycle
import Testing

@testable import CustodyServer

#if canImport(Glibc)
import Glibc
#endif

@Suite struct HeapTrimTests {
    /// Free chunks between blocks still in use cannot go back by shrinking the heap; a pass gives
    /// their pages back, which the process's resident memory shows.
    @Test func aPassGivesFreePagesBetweenLiveBlocksBackToTheSystem() throws {
        #if canImport(Glibc)
        // 256 MiB in 4 KiB blocks, every byte touched; then all but every 16th block freed.
        let blockBytes = 4096
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(256 << 20) / blockBytes {
            let block = try #require(malloc(blockBytes))
            memset(block, 1, blockBytes)
            blocks.append(block)
        }
        for (index, block) in blocks.enumerated() where index % 16 != 0 { free(block) }
        defer { for (index, block) in blocks.enumerated() where index % 16 == 0 { free(block) } }
        let before = try #require(ProcessMemory.readResidentBytes())
        let pass = try #require(HeapTrimService.pass(slackBytes: 32 << 20))
        let after = try #require(ProcessMemory.readResidentBytes())
        #expect(pass.freeBytes >= 200 << 20, "malloc held \(pass.freeBytes) bytes free")
        // 240 MiB was freed; other tests running meanwhile may allocate some of what they need.
        #expect(before - after >= 128 << 20, "resident \(before) → \(after) bytes")
        // With less free than the slack, a pass does nothing.
        #expect(HeapTrimService.pass(slackBytes: 1 << 40) == nil)
        #endif
    }

    /// The service waits between passes and returns at once when the group shuts down, not at
    /// its next pass.
    @Test func theServiceReturnsOnGracefulShutdown() async throws {
        let logger = Logger(label: "test.heap-trim")
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: HeapTrimService(interval: .seconds(3600), logger: logger))], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }
}
