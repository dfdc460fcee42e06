package main

import "testing"

func TestParseImportSource(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, where string
		ok                bool
	}{
		{"restic:/srv/restic", "restic", "/srv/restic", true},
		{"restic:///srv/restic/", "restic", "/srv/restic", true},
		{"restic:rel/repo", "restic", "rel/repo", true},
		{"restic:", "", "", false},
		{"borg:/srv/borg", "", "", false}, // not yet
		{"/srv/restic", "", "", false},
		{"sftp://host/x", "", "", false},
	} {
		scheme, where, err := parseImportSource(tc.in)
		if (err == nil) != tc.ok || scheme != tc.scheme || where != tc.where {
			t.Errorf("parseImportSource(%q) = %q, %q, %v; want %q, %q, ok %v", tc.in, scheme, where, err, tc.scheme, tc.where, tc.ok)
		}
	}
}
