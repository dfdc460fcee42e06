// Package confkit decodes hostd's YAML configuration strictly and reports
// every problem at once with its file, line and column.
//
// It owns the generic machinery: decoding a yaml.Node tree into typed
// config structs (unknown keys, wrong types and bad values are errors), the
// positions of every decoded key, duration parsing, and the Validator that
// services use to report semantic problems by path. It knows nothing about
// hostd's sections; internal/config assembles those.
package confkit
