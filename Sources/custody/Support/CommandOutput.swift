import ArgumentParser
import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Logging
import NIOCore

/// Buffered standard output for commands that print a lot.
struct FileHandleOutput {
    var buffer = Data()

    mutating func write(_ data: Data) {
        buffer.append(data)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        FileHandle.standardOutput.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Runs `body`, turning a log error into one clear sentence on stderr and exit code 1.
func withCleanErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as LogError {
        printError("custody: \(error.message)")
        throw ExitCode(error.code == .corruption || error.code == .dataLoss ? 2 : 1)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("custody: \(error)")
        throw ExitCode(1)
    }
}

/// ``withCleanErrors(_:)`` for async work.
func awaitingCleanErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as LogError {
        printError("custody: \(error.message)")
        throw ExitCode(error.code == .corruption || error.code == .dataLoss ? 2 : 1)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("custody: \(error)")
        throw ExitCode(1)
    }
}

func encodeJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// RFC 3339 with milliseconds, in UTC.
func formatTimestamp(_ nanoseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(nanoseconds) / 1e9))
}

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
