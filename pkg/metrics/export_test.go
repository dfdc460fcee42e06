package metrics

// KernelNameFinding is kernelNameFinding, for the package's external tests.
var KernelNameFinding = kernelNameFinding
