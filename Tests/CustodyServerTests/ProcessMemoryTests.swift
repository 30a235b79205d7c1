import Testing

@testable import CustodyServer

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ProcessMemoryTests {
    /// The heap figures come from a measurement at most ``ProcessMemory/heapSampleInterval`` old:
    /// polling the stats does not walk malloc's arenas each time.
    @Test func heapFiguresAreMeasuredAtMostOncePerInterval() throws {
        #if canImport(Glibc)
        let measured = ProcessMemory.current(heapAge: .zero)
        let inUse = try #require(measured.heapInUseBytes)
        // 64 MiB in 64 KiB blocks (below malloc's mmap threshold: on the heap), every byte touched.
        let blockBytes = 64 << 10
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(64 << 20) / blockBytes {
            let block = try #require(malloc(blockBytes))
            memset(block, 1, blockBytes)
            blocks.append(block)
        }
        defer { for block in blocks { free(block) } }
        let sampled = ProcessMemory.current()
        #expect(sampled.heapInUseBytes == measured.heapInUseBytes)
        #expect(sampled.heapBytes == measured.heapBytes)
        // Measured again, the blocks are there (other tests running meanwhile allocate and free).
        let fresh = try #require(ProcessMemory.current(heapAge: .zero).heapInUseBytes)
        #expect(fresh - inUse >= 48 << 20, "heap in use \(inUse) → \(fresh) bytes")
        #endif
    }
}
