import Glibc

// The command line is parsed and dispatched in CommandLine/GProxyMain.swift.
exit(GProxyMain.run(CommandLine.arguments))
