package confkit

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Redacted replaces secret values in encoded config.
const Redacted = "<redacted>"

// secretKeyRE matches keys whose plain-string values are treated as secret
// when encoding with redaction.
var secretKeyRE = regexp.MustCompile(`(?i)(password|passphrase|secret|token|private|user_id|uuid|short_id|credential|api_key)`)

// Encode turns a config value into a YAML node: durations as "15s",
// stringers as strings, structs in field order. With redact, plain string
// values of secret-looking keys become <redacted> (secret references are
// references, not values, and are kept).
func Encode(v any, redact bool) *yaml.Node {
	return encode(reflect.ValueOf(v), "", redact)
}

// Marshal is Encode followed by YAML formatting.
func Marshal(v any, redact bool) ([]byte, error) {
	n := Encode(v, redact)
	return yaml.Marshal(n)
}

func scalar(tag, val string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val}
}

func encode(v reflect.Value, key string, redact bool) *yaml.Node {
	if !v.IsValid() {
		return scalar("!!null", "null")
	}
	if v.Type() == durationType {
		return scalar("!!str", formatDuration(time.Duration(v.Int())))
	}
	if m, ok := v.Interface().(yaml.Marshaler); ok && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		// Config types that print themselves (and keep their secrets
		// out of the output) are encoded as they say.
		out, err := m.MarshalYAML()
		if err != nil {
			return scalar("!!str", "<"+err.Error()+">")
		}
		return encode(reflect.ValueOf(out), key, redact)
	}
	if s, ok := v.Interface().(fmt.Stringer); ok && (v.Kind() != reflect.Struct || isUnmarshaler(v.Type())) && v.Kind() != reflect.Pointer {
		return scalar("!!str", s.String())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalar("!!null", "null")
		}
		return encode(v.Elem(), key, redact)
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range structFields(v.Type()) {
			n.Content = append(n.Content, scalar("!!str", f.name), encode(v.FieldByIndex(f.index), f.name, redact))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			n.Content = append(n.Content, scalar("!!str", k.String()), encode(v.MapIndex(k), k.String(), redact))
		}
		return n
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			c := encode(v.Index(i), key, redact)
			if c.Kind != yaml.ScalarNode {
				n.Style = 0
			}
			n.Content = append(n.Content, c)
		}
		return n
	case reflect.String:
		if redact && v.String() != "" && secretKeyRE.MatchString(key) {
			return scalar("!!str", Redacted)
		}
		return scalar("!!str", v.String())
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	return scalar("!!str", fmt.Sprint(v.Interface()))
}

// formatDuration prints d with the largest whole units, using d for days.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	const day = 24 * time.Hour
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func isUnmarshaler(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(unmarshalerType)
}
