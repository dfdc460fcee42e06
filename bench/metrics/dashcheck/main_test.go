package main

import (
	"strings"
	"testing"
	"time"
)

func TestSubstitute(t *testing.T) {
	iv := intervals(10*time.Minute, time.Second, 1000)
	if iv.step != time.Second || iv.rate != 4*time.Second {
		t.Fatalf("intervals = %+v, want step 1s, rate 4s", iv)
	}
	vars := map[string]string{"node": "host:9100", "job": "node", "disk": "sd[a-z]", "q": `it's`}
	for _, tt := range []struct{ in, want string }{
		{`rate(x{instance="$node",job="$job"}[$__rate_interval])`, `rate(x{instance="host:9100",job="node"}[4s])`},
		{`x{instance="${node}"}[$__interval] offset $__range`, `x{instance="host:9100"}[1s] offset 10m`},
		{`x{d=~"${disk:regex}"}`, `x{d=~"sd\[a-z\]"}`},
		{`x{d=~"${disk:raw}",e="[[job]]"}`, `x{d=~"sd[a-z]",e="node"}`},
		{`x{q='$q'}`, `x{q='it\'s'}`},
		{`x{y="$unknown"} $__range_s $__interval_ms`, `x{y="$unknown"} 600 1000`},
	} {
		if got := substitute(tt.in, vars, iv); got != tt.want {
			t.Errorf("substitute(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// A longer range is stepped by range / max points, rounded.
	if iv := intervals(24*time.Hour, 15*time.Second, 1000); iv.step != time.Minute || iv.rate != 75*time.Second {
		t.Errorf("24h: %+v", iv)
	}
}

func TestAllPanelsWalksRows(t *testing.T) {
	d := &dashboard{Panels: []panel{
		{ID: 1, Type: "stat", Targets: []target{{Expr: "up"}}},
		{ID: 2, Type: "row", Title: "R", Panels: []panel{
			{ID: 3, Type: "timeseries", Targets: []target{{Expr: "a", Hide: true}, {Expr: "b"}}},
		}},
	}}
	d.Rows = append(d.Rows, struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}{Title: "old", Panels: []panel{{ID: 4, Type: "graph"}}})
	var ids []string
	for _, p := range d.allPanels() {
		ids = append(ids, p.row+":"+strings.Repeat("x", p.ID)+":"+string(rune('0'+len(p.visibleTargets()))))
	}
	if got := strings.Join(ids, " "); got != ":x:1 R:xxx:1 old:xxxx:0" {
		t.Errorf("panels: %s", got)
	}
}

func TestLabelValuesQuery(t *testing.T) {
	for _, tt := range []struct{ q, match, label string }{
		{"label_values(node_uname_info, job)", "node_uname_info", "job"},
		{`label_values(node_uname_info{job="$job"}, instance)`, `node_uname_info{job="$job"}`, "instance"},
		{"label_values(job)", "", "job"},
	} {
		m := labelValuesQuery.FindStringSubmatch(tt.q)
		if m == nil || m[1] != tt.match || m[2] != tt.label {
			t.Errorf("%s: %q", tt.q, m)
		}
	}
}
