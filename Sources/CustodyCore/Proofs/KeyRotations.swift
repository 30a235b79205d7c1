/// The key rotations a log's checkpoints announce: each a checkpoint signed by the old key that
/// names the new one (``LogCheckpoint/nextPublicKey``).
///
/// Only rotations whose signature holds count: a forged announcement trusts nothing.
public struct KeyRotations: Sendable {
    /// (the key that signed, the key it announced), in the order given.
    let rotations: [(signer: [UInt8], next: [UInt8])]

    /// The rotations among `checkpoints` (the others are ignored).
    public init(_ checkpoints: [LogCheckpoint]) {
        rotations = checkpoints.compactMap { checkpoint in
            guard let next = checkpoint.nextPublicKey, checkpoint.hasValidSignature else { return nil }
            return (checkpoint.publicKey, next)
        }
    }

    /// `trusted` and every key a trusted key announced, transitively: forward from a key pinned
    /// earlier to the keys the server rotated to since.
    public func keys(announcedBy trusted: Set<[UInt8]>) -> Set<[UInt8]> {
        closure(trusted) { rotation, keys in keys.contains(rotation.signer) ? rotation.next : nil }
    }

    /// `trusted` and every key that announced a trusted key, transitively: back from the
    /// server's current key to the keys it rotated from.
    public func keys(announcing trusted: Set<[UInt8]>) -> Set<[UInt8]> {
        closure(trusted) { rotation, keys in keys.contains(rotation.next) ? rotation.signer : nil }
    }

    private func closure(_ start: Set<[UInt8]>, _ step: ((signer: [UInt8], next: [UInt8]), Set<[UInt8]>) -> [UInt8]?) -> Set<[UInt8]> {
        var keys = start
        var changed = true
        while changed {
            changed = false
            for rotation in rotations {
                if let key = step(rotation, keys), keys.insert(key).inserted { changed = true }
            }
        }
        return keys
    }
}
