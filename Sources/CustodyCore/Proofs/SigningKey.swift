import Crypto
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The server's Ed25519 key that signs checkpoints (docs/operations.md, "The signing key").
///
/// Rules:
/// - The private key lives only in its file (mode 0600, created on first start) and in this
///   value: it is never written to the log, a response or a log line. Only the public key and its
///   id are shown.
/// - The file is written once, atomically (a temporary file, fsynced, renamed, the directory
///   fsynced), and never rewritten: a rotation writes a new file and keeps the old one beside it.
public struct SigningKey: Sendable {
    /// The private key's 32 bytes (swift-crypto's key type is not `Sendable`; it is made from
    /// these for each signature, a few microseconds every checkpoint).
    private let rawPrivateKey: [UInt8]
    public let publicKey: [UInt8]

    init(privateKey: Curve25519.Signing.PrivateKey) {
        self.rawPrivateKey = Array(privateKey.rawRepresentation)
        self.publicKey = Array(privateKey.publicKey.rawRepresentation)
    }

    /// A new random key.
    public static func generate() -> SigningKey {
        SigningKey(privateKey: Curve25519.Signing.PrivateKey())
    }

    public var keyID: String { LogCheckpoint.keyID(of: publicKey) }

    func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try Curve25519.Signing.PrivateKey(rawRepresentation: rawPrivateKey).signature(for: message))
    }

    /// What the file holds: a comment line, then the 32-byte private key in hex.
    static let fileHeader = "# Custody checkpoint signing key (Ed25519, private: keep this file at mode 0600)\n"

    /// The key in `path`. Throws ``CoreError/Code/invalidArgument`` when the file cannot be read
    /// or does not hold a key.
    public static func load(from path: String) throws(CoreError) -> SigningKey {
        let bytes: [UInt8]
        do {
            let descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
            bytes = try descriptor.closeAfter {
                // A key file is one comment line and 64 hex digits; read no more than 64 KiB.
                try [UInt8](unsafeUninitializedCapacity: 64 << 10) { buffer, count in
                    count = try descriptor.read(into: UnsafeMutableRawBufferPointer(buffer))
                }
            }
        } catch {
            throw CoreError(.invalidArgument, "cannot read the signing key \(path): \(error)")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("#") && !$0.isEmpty }
        guard lines.count == 1, let raw = Hex.decode(String(lines[0])), raw.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw CoreError(.invalidArgument, "\(path) does not hold a Custody signing key (one line of 64 hex digits)")
        }
        return SigningKey(privateKey: key)
    }

    /// The key in `path`, created (mode 0600) when there is no file. `created` says which.
    public static func loadOrCreate(at path: String) throws(CoreError) -> (key: SigningKey, created: Bool) {
        if access(path, F_OK) == 0 { return (try load(from: path), false) }
        let key = generate()
        try key.write(to: path)
        return (key, true)
    }

    /// Writes the key to a new file at `path` (mode 0600); fails when one is there.
    public func write(to path: String) throws(CoreError) {
        let text = Self.fileHeader + Hex.encode(rawPrivateKey) + "\n"
        let temporary = path + ".tmp"
        unlink(temporary)
        do {
            let descriptor = try FileDescriptor.open(
                FilePath(temporary),
                .writeOnly,
                options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: [.ownerReadWrite]
            )
            try descriptor.closeAfter {
                _ = try descriptor.writeAll(text.utf8)
                guard fsync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
            }
        } catch {
            unlink(temporary)
            throw CoreError(.storageUnavailable, "cannot write the signing key \(path): \(error)")
        }
        // link() fails when the target exists: never replace a key.
        guard link(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CoreError(.conflict, "cannot create the signing key \(path): \(reason)")
        }
        unlink(temporary)
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let directoryDescriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Where a data directory's key lives by default: beside the directory, in its parent,
    /// named after it (`./custody-data` → `./custody-data.signing-key`), so that a copy of the
    /// data directory does not carry the key that vouches for it.
    public static func defaultPath(forDataDirectory directory: String) -> String {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed + ".signing-key"
    }
}
