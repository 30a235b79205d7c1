import NIOCore

/// A task executor that runs its jobs on one NIO event loop: code that prefers it
/// (`withTaskExecutorPreference`) runs where the loop's channels change state, one job at a time
/// with their events (``PostgresConnection/queryIfOpen(_:logger:)``).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
