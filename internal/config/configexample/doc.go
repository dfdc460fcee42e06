// Package configexample renders the annotated example config
// (configs/hostd.example.yaml) from the config structs and the doc comments
// of their fields, read from the Go source with go/parser. Only the test
// that keeps the shipped example current imports it, so the parser stays
// out of the hostd binary, which embeds the rendered file instead.
package configexample
