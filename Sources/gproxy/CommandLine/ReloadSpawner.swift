import Foundation
import Glibc

/// `-W`/`-Ws` reload on SIGUSR2: starts this same program again with the same arguments plus
/// `-sf <this pid>`. The new process reads the configuration afresh, takes this one's sockets and
/// server states (`ReloadHandover`) and then tells this one to finish; if its configuration is bad
/// it exits and this one keeps serving. HAProxy's master process does the same with re-execution.
enum ReloadSpawner {
    /// The arguments of a reload: `-sf`/`-st` pid lists of an earlier reload are dropped.
    static func reloadArguments(_ original: [String], replacing pid: Int32) -> [String] {
        var out: [String] = []
        var i = 0
        while i < original.count {
            let a = original[i]
            if a == "-sf" || a == "-st" {
                i += 1
                while i < original.count, let p = Int32(original[i]), p > 0 { i += 1 }
                continue
            }
            out.append(a)
            i += 1
        }
        return out + ["-sf", String(pid)]
    }

    /// Spawns `/proc/self/exe` (the binary this process runs, even if the file was replaced by an
    /// upgrade: then the new file) with `arguments`, signals unblocked. Returns its pid.
    static func spawn(_ arguments: [String]) -> pid_t? {
        var program = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &program, program.count - 1)
        guard n > 0 else { return nil }
        // A binary replaced on disk reads as "path (deleted)": start the file now at that path.
        var path = String(decoding: program[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        // Only stdin/stdout/stderr pass on. gproxy's own descriptors are close-on-exec already; an
        // inherited one (from whatever started this process) would otherwise be held open by the
        // successor too — a supervisor watching it for this process's exit would wait forever.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, nil, &attributes, argv, environ)
        return rc == 0 ? pid : nil
    }
}
