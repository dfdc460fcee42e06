// Package chunker owns content-defined chunking: FastCDC with normalized
// chunking over a gear table derived from the repository's secret chunker
// seed, so chunk boundaries (and therefore chunk sizes) reveal nothing
// about the content to someone without the key.
//
// It does not hash, compress or store chunks; package archiver does.
package chunker
