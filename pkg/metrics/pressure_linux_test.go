package metrics

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
)

// parsePSITotals reads the same totals as procfs, on the fixtures and on
// this host (where the kernel has PSI), and refuses what procfs refuses.
func TestParsePSITotalsMatchesProcfs(t *testing.T) {
	for _, root := range []string{"testdata/proc", "/proc"} {
		fs, err := procfs.NewFS(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range []string{"cpu", "io", "memory"} {
			want, err := fs.PSIStatsForResource(res)
			if os.IsNotExist(err) && root == "/proc" {
				t.Logf("%s: no PSI on this kernel", root)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(root, "pressure", res))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parsePSITotals(b)
			if err != nil {
				t.Fatalf("%s/pressure/%s: %v", root, res, err)
			}
			for _, l := range []struct {
				name      string
				got, want *procfs.PSILine
			}{{"some", got.Some, want.Some}, {"full", got.Full, want.Full}} {
				if (l.got == nil) != (l.want == nil) || (l.got != nil && l.got.Total != l.want.Total) {
					t.Errorf("%s/pressure/%s %s: got %+v, procfs %+v", root, res, l.name, l.got, l.want)
				}
			}
		}
	}
	for _, bad := range []string{
		"some avg10=0.00 avg60=0.00 avg300=0.00\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=x\n",
		"full total=-1\n",
	} {
		if _, err := parsePSITotals([]byte(bad)); err == nil {
			t.Errorf("parsePSITotals(%q): no error", bad)
		}
	}
}
