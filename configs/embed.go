package configs

import _ "embed"

// Example is hostd.example.yaml: every option with a comment.
//
//go:embed hostd.example.yaml
var Example []byte
