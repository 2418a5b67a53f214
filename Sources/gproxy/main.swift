// Entry point: see CommandLine/GProxyCommand.swift.
print("gproxy")
