// Command gendata writes the benchmark's generated data set: large files
// of mixed compressible and random content, a share of which repeats
// content of other files at shifted offsets (so only content-defined
// chunking finds it), and changes a share of files for the re-run.
package main
