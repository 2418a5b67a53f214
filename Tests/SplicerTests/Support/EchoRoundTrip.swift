import Splicer

/// Sends `total` pseudo-random bytes through `c` to an echo server while reading them back, and
/// compares the SHA-256 of both directions. Writer and reader run at once, or the echo would fill
/// every buffer and stall. Closes `c`.
enum EchoRoundTrip {
    struct Result {
        var received: Int
        var digestsMatch: Bool
    }

    static func run(_ c: BlockingSocket, total: Int, seed: UInt64) -> Result {
        let sentDigest = Locked<[UInt8]>([])
        let writer = NamedThread.start(name: "test-writer") {
            var stream = ByteStream(seed: seed)
            var sha = SHA256()
            var sent = 0
            while sent < total {
                let chunk = stream.next(min(256 * 1024, total - sent))
                sha.update(chunk)
                if !c.send(chunk) { break }
                sent += chunk.count
            }
            c.shutdownWrite()
            let d = sha.finish()
            sentDigest.withLock { $0 = d }
        }
        var sha = SHA256()
        var received = 0
        while let chunk = c.receive(max: 1 << 20), !chunk.isEmpty {
            sha.update(chunk)
            received += chunk.count
        }
        NamedThread.join(writer)
        c.close()
        return Result(received: received, digestsMatch: sha.finish() == sentDigest.withLock { $0 })
    }
}
