import CNATS
import NIOPosix

/// A JetStream key-value bucket (nats.c's `kvStore`): what leases are kept in. Every write names
/// the revision it replaces, so two writers of one key cannot both succeed.
///
/// Rules: like ``JetStreamConnection``, every nats.c call runs on the connection's threads.
public final class KeyValueBucket: @unchecked Sendable {
    // @unchecked Sendable: `store` is set once in `init` and destroyed once in `deinit`; nats.c's
    // kvStore calls are thread-safe, and the connection it belongs to outlives it (held here).
    let store: OpaquePointer
    let connection: JetStreamConnection

    /// A key's value and the revision that wrote it.
    public struct Entry: Sendable, Hashable {
        public var value: [UInt8]
        public var revision: UInt64
    }

    init(store: OpaquePointer, connection: JetStreamConnection) {
        self.store = store
        self.connection = connection
    }

    deinit {
        kvStore_Destroy(store)
    }

    /// The key's newest value; nil when it has none (never written, or deleted).
    public func get(_ key: String) async throws -> Entry? {
        try await connection.threads.runIfActive { () throws(JetStreamError) -> Entry? in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, self.store, key)
            if status == NATS_NOT_FOUND { return nil }
            guard status == NATS_OK, let entry else {
                throw JetStreamError("reading key \(key)", status: status, errorCode: jsErrCode(rawValue: 0))
            }
            defer { kvEntry_Destroy(entry) }
            let count = Int(kvEntry_ValueLen(entry))
            var value: [UInt8] = []
            if count > 0, let bytes = kvEntry_Value(entry) {
                value = Array(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return Entry(value: value, revision: kvEntry_Revision(entry))
        }
    }

    /// Writes `value` under `key` only if `revision` is the key's newest (0: only if the key has
    /// no value); returns the new revision. ``JetStreamError/Code/fenced`` when another write
    /// came first.
    public func put(_ key: String, _ value: [UInt8], replacing revision: UInt64) async throws -> UInt64 {
        try await connection.threads.runIfActive { () throws(JetStreamError) -> UInt64 in
            var written: UInt64 = 0
            let status = value.withUnsafeBytes { bytes in
                revision == 0
                    ? kvStore_Create(&written, self.store, key, bytes.baseAddress, Int32(bytes.count))
                    : kvStore_Update(&written, self.store, key, bytes.baseAddress, Int32(bytes.count), revision)
            }
            guard status == NATS_OK else {
                // nats.c reports a failed create or update as a JetStream API error whose code
                // it does not hand back here: read the key to tell a lost race from a failure.
                var error = JetStreamError("writing key \(key)", status: status, errorCode: jsErrCode(rawValue: 0))
                if status == NATS_ERR || status == NATS_MISMATCH { error = JetStreamError(.fenced, error.message) }
                throw error
            }
            return written
        }
    }
}

extension KeyValueBucket {
    /// Writes `value` under `key`, whatever the key held; returns the new revision.
    public func set(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await connection.threads.runIfActive { () throws(JetStreamError) -> UInt64 in
            var written: UInt64 = 0
            let status = value.withUnsafeBytes { bytes in kvStore_Put(&written, self.store, key, bytes.baseAddress, Int32(bytes.count)) }
            guard status == NATS_OK else { throw JetStreamError("writing key \(key)", status: status, errorCode: jsErrCode(rawValue: 0)) }
            return written
        }
    }

    /// Every key with a value.
    public func keys() async throws -> [String] {
        try await connection.threads.runIfActive { () throws(JetStreamError) -> [String] in
            var list = kvKeysList()
            let status = kvStore_Keys(&list, self.store, nil)
            if status == NATS_NOT_FOUND { return [] }
            guard status == NATS_OK else { throw JetStreamError("listing keys", status: status, errorCode: jsErrCode(rawValue: 0)) }
            defer { kvKeysList_Destroy(&list) }
            return (0..<Int(list.Count)).compactMap { list.Keys[$0].map { String(cString: $0) } }
        }
    }
}

extension JetStreamConnection {
    /// The key-value bucket `name`, created when missing (file storage, `replicas` copies, one
    /// value kept per key).
    public func keyValueBucket(_ name: String, replicas: Int) async throws -> KeyValueBucket {
        try await threads.runIfActive { () throws(JetStreamError) -> KeyValueBucket in
            var store: OpaquePointer?
            var status = js_KeyValue(&store, self.context, name)
            if status == NATS_NOT_FOUND {
                var config = kvConfig()
                kvConfig_Init(&config)
                status = name.withCString { bucket in
                    config.Bucket = bucket
                    config.History = 1
                    config.StorageType = js_FileStorage
                    config.Replicas = Int32(replicas)
                    return js_CreateKeyValue(&store, self.context, &config)
                }
            }
            guard status == NATS_OK, let store else {
                throw JetStreamError("opening key-value bucket \(name)", status: status, errorCode: jsErrCode(rawValue: 0))
            }
            return KeyValueBucket(store: store, connection: self)
        }
    }
}
