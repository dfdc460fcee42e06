package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
)

// taggedRepo backs up a, a, b and a+b (hosts h1, h1, h2, h1) with tags
// and returns the repository and the source directories.
func taggedRepo(t *testing.T) (*backup.Repository, string, string) {
	t.Helper()
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	a, b := filepath.Join(src, "a"), filepath.Join(src, "b")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []backup.BackupOptions{
		{Paths: []string{a}, Hostname: "h1", Tags: []string{"daily"}},
		{Paths: []string{a}, Hostname: "h1"},
		{Paths: []string{b}, Hostname: "h2", Tags: []string{"daily", "db"}},
		{Paths: []string{a, b}, Hostname: "h1", Tags: []string{"weekly"}},
	} {
		if _, err := r.Backup(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return r, a, b
}

func TestSnapshotFilterAndGroups(t *testing.T) {
	ctx := context.Background()
	r, a, b := taggedRepo(t)
	count := func(gs []backup.SnapshotGroup) (n []int) {
		for _, g := range gs {
			n = append(n, len(g.Snapshots))
		}
		return n
	}
	tests := []struct {
		name   string
		filter backup.SnapshotFilter
		by     string
		want   []int
		keys   []string
	}{
		{"all, one group", backup.SnapshotFilter{}, "", []int{4}, []string{""}},
		{"host", backup.SnapshotFilter{Hosts: []string{"h2"}}, "", []int{1}, nil},
		{"path must be among the snapshot's", backup.SnapshotFilter{Paths: []string{b}}, "", []int{2}, nil},
		{"all paths given", backup.SnapshotFilter{Paths: []string{a, b + "/"}}, "", []int{1}, nil},
		{"tag list means all of it", backup.SnapshotFilter{Tags: []string{"daily,db"}}, "", []int{1}, nil},
		{"tags repeated mean any", backup.SnapshotFilter{Tags: []string{"db", "weekly"}}, "", []int{2}, nil},
		{"empty tag is untagged", backup.SnapshotFilter{Tags: []string{""}}, "", []int{1}, nil},
		{"group by host", backup.SnapshotFilter{}, "host", []int{3, 1}, []string{"host [h1]", "host [h2]"}},
		{"group by paths", backup.SnapshotFilter{}, "paths", []int{2, 1, 1}, []string{"paths [" + a + "]", "paths [" + a + ", " + b + "]", "paths [" + b + "]"}},
		{"group by tags", backup.SnapshotFilter{Hosts: []string{"h1"}}, "tags", []int{1, 1, 1}, []string{"tags []", "tags [daily]", "tags [weekly]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			by, err := backup.ParseGroupBy(tc.by)
			if err != nil {
				t.Fatal(err)
			}
			gs, err := r.SnapshotGroups(ctx, tc.filter, by)
			if err != nil {
				t.Fatal(err)
			}
			if got := count(gs); !slices.Equal(got, tc.want) {
				t.Fatalf("group sizes %v, want %v", got, tc.want)
			}
			if tc.keys != nil {
				var keys []string
				for _, g := range gs {
					keys = append(keys, g.Key.String())
				}
				if !slices.Equal(keys, tc.keys) {
					t.Fatalf("keys %q, want %q", keys, tc.keys)
				}
			}
		})
	}
	if _, err := backup.ParseGroupBy("host,colour"); err == nil {
		t.Error("ParseGroupBy accepted an unknown field")
	}
}

func TestForgetGroups(t *testing.T) {
	ctx := context.Background()
	r, a, _ := taggedRepo(t)
	// The case: 4 snapshots over 3 path sets, keep-last 1 keeps
	// 3, and the groups say why.
	res, err := r.ForgetWith(ctx, backup.ForgetOptions{Policy: backup.RetentionPolicy{Last: 1}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 3 || len(res.Keep) != 3 || len(res.Remove) != 1 || res.GroupBy != "host,paths" {
		t.Fatalf("groups %d, keep %d, remove %d, by %q; want 3, 3, 1 by host,paths", len(res.Groups), len(res.Keep), len(res.Remove), res.GroupBy)
	}
	g := res.Groups[0]
	if g.Key.Hostname != "h1" || !slices.Equal(g.Key.Paths, []string{a}) || len(g.Keep) != 1 || len(g.Remove) != 1 || g.Keep[0].Reasons[0] != "last" {
		t.Fatalf("first group %+v", g)
	}
	one := backup.GroupBy{}
	res, err = r.ForgetWith(ctx, backup.ForgetOptions{Policy: backup.RetentionPolicy{Last: 1}, DryRun: true, GroupBy: &one})
	if err != nil || len(res.Keep) != 1 || len(res.Groups) != 1 {
		t.Fatalf("one group: %v, keep %d", err, len(res.Keep))
	}
	// --keep-tag keeps tagged snapshots whatever else; the filter leaves
	// h2's snapshot alone.
	res, err = r.ForgetWith(ctx, backup.ForgetOptions{Policy: backup.RetentionPolicy{Tags: []string{"daily"}},
		Filter: backup.SnapshotFilter{Hosts: []string{"h1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keep) != 1 || len(res.Remove) != 2 || res.Keep[0].Reasons[0] != "tags" {
		t.Fatalf("keep-tag: keep %d, remove %d", len(res.Keep), len(res.Remove))
	}
	left, _ := r.Snapshots(ctx)
	if len(left) != 2 {
		t.Fatalf("%d snapshots left, want 2 (h1's daily, h2's)", len(left))
	}
	// Named snapshots.
	if _, err := r.ForgetWith(ctx, backup.ForgetOptions{Snapshots: []string{left[0].ShortID}, Policy: backup.RetentionPolicy{Last: 1}}); err == nil {
		t.Error("forget took both snapshots and a policy")
	}
	res, err = r.ForgetWith(ctx, backup.ForgetOptions{Snapshots: []string{left[0].ShortID}})
	if err != nil || len(res.Remove) != 1 || res.Remove[0].ID != left[0].ID {
		t.Fatalf("forget by ID: %v %+v", err, res)
	}
}

func TestTag(t *testing.T) {
	ctx := context.Background()
	r, _, _ := taggedRepo(t)
	ch, err := r.Tag(ctx, backup.TagOptions{Add: []string{"keep"}, Remove: []string{"daily"}, Filter: backup.SnapshotFilter{Tags: []string{"daily"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 {
		t.Fatalf("%d changed, want 2", len(ch))
	}
	snaps, _ := r.Snapshots(ctx)
	var tags []string
	for _, s := range snaps {
		tags = append(tags, strings.Join(s.Tags, "+"))
		if slices.Contains(s.Tags, "keep") && s.Original == "" {
			t.Errorf("retagged snapshot %s does not name its original", s.ShortID)
		}
	}
	slices.Sort(tags)
	if got := strings.Join(tags, " "); got != " db+keep keep weekly" {
		t.Fatalf("tags %q", got)
	}
	// Unchanged tags write nothing; --set replaces.
	if ch, err := r.Tag(ctx, backup.TagOptions{Add: []string{"weekly"}, Snapshots: []string{"latest"}}); err != nil || len(ch) != 0 {
		t.Fatalf("no-op tag: %v %v", ch, err)
	}
	ch, err = r.Tag(ctx, backup.TagOptions{SetTags: true, Snapshots: []string{"latest"}})
	if err != nil || len(ch) != 1 || len(ch[0].Tags) != 0 {
		t.Fatalf("set none: %v %+v", err, ch)
	}
	for _, bad := range []backup.TagOptions{{}, {SetTags: true, Add: []string{"x"}}, {Add: []string{"a,b"}}} {
		if _, err := r.Tag(ctx, bad); err == nil {
			t.Errorf("Tag(%+v) accepted", bad)
		}
	}
	if res, err := r.Check(ctx, backup.CheckOptions{}); err != nil || !res.OK() {
		t.Fatalf("check after tag: %v %+v", err, res)
	}
}
