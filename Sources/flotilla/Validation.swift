import ArgumentParser
// The shared checks (checkRange, checkChoice, checkLength) for every file of this executable.
@_exported import CommandLineChecks

// The ranges this executable's options are checked against (the checks: `CommandLineChecks`).

/// The node ids and counts a local cluster supports (`cluster up` looks for nodes 1...9).
let localClusterNodes = 1...9
