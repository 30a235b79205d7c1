import CustodyLog

/// A past log position: a seq, or an instant (the last seq appended at or before it).
public enum AsOf: Sendable, Hashable {
    case seq(UInt64)
    /// Nanoseconds since the Unix epoch.
    case instant(Int64)

    /// Parses `as_of` (docs/api.md): a seq (digits) or an RFC 3339 instant.
    public init(parsing text: String) throws(CoreError) {
        if let seq = UInt64(text) {
            self = .seq(seq)
        } else if let instant = RFC3339.nanoseconds(text, clamping: true) {
            self = .instant(instant)
        } else {
            throw CoreError.invalidArgument("as_of", "must be a seq or an RFC 3339 instant")
        }
    }
}

extension CoreContext {
    /// The seq an `AsOf` stands for (never past the log's head); `beyond_retention` for a
    /// position before the state snapshot retention kept (the log's first seq − 1).
    func resolve(_ asOf: AsOf) async throws(CoreError) -> UInt64 {
        let head = await log.lastSeq
        let seq: UInt64
        switch asOf {
        case .seq(let asked):
            seq = min(asked, head)
        case .instant(let instant):
            guard instant < Int64.max else { return head }
            do {
                seq = try await log.firstSeq(atOrAfter: instant + 1) - 1
            } catch {
                throw CoreError(.internalError, "reading the log's time index failed")
            }
        }
        if let record = try await retention(), seq < record.latest.lastSeq {
            throw CoreError(
                .beyondRetention,
                "as_of seq \(seq) lies in the range retention deleted; time travel reaches back to seq \(record.latest.lastSeq)"
            )
        }
        return seq
    }

    /// What retention has deleted, nil when nothing.
    func retention() async throws(CoreError) -> RetentionRecord? {
        do {
            return try await store.retention()
        } catch {
            throw CoreError.internal("reading the retention record failed", error)
        }
    }
}

extension TaskOperations {
    /// The task as it stood at a past log position, computed from the log: the events of this task
    /// from its `task.created` up to that position, never the current row. Returns the task and
    /// the seq it is as of; `task_not_found` when the task did not exist yet.
    public func getTask(_ uuid: String, asOf: AsOf) async throws(CoreError) -> (task: TaskRecord, asOfSeq: UInt64) {
        let seq = try await context.resolve(asOf)
        // Where the task starts: its creation seq, from the projection (it never changes).
        let current = try await getTask(uuid)
        guard current.createdSeq <= seq else { throw CoreError(.taskNotFound, "task \(uuid) did not exist yet at seq \(seq)") }
        var task: TaskRecord?
        var next = current.createdSeq
        // A task created before the retained range starts from the snapshot of the state then.
        if let record = try await context.retention(), current.createdSeq <= record.latest.lastSeq {
            guard let snapshots = context.snapshots else {
                throw CoreError(.beyondRetention, "the state before seq \(record.firstRetainedSeq) is in a snapshot this node does not have")
            }
            do {
                task = try snapshots.task(uuid: uuid, inSnapshot: record.latest.snapshot)
            } catch {
                throw CoreError.internal("reading the state snapshot \(record.latest.snapshot) failed", error)
            }
            next = record.firstRetainedSeq
        }
        while next <= seq {
            let records: [LogRecord]
            do {
                records = try await context.log.read(from: next, maxRecords: 16_384)
            } catch {
                throw CoreError(.internalError, "reading the log failed")
            }
            guard let last = records.last else { break }
            for record in records where record.seq <= seq {
                guard let event = try? EventCodec.decode(record) else { continue }
                switch event.body {
                case .taskCreated(let created) where created.uuid == uuid && task == nil:
                    task = TaskRecord(
                        uuid: uuid,
                        orderId: created.orderId,
                        status: .pending,
                        payload: created.payload,
                        createdAt: event.ingestedAt,
                        updatedAt: event.ingestedAt,
                        lastSeq: event.seq,
                        createdSeq: event.seq
                    )
                case .taskStatusChanged(let change) where change.uuid == uuid:
                    task?.status = change.status
                    task?.updatedAt = event.ingestedAt
                    task?.lastSeq = event.seq
                default:
                    break
                }
            }
            next = last.seq + 1
        }
        guard let task else { throw CoreError(.taskNotFound, "task \(uuid) did not exist yet at seq \(seq)") }
        return (task, seq)
    }
}
