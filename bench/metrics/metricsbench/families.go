package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exporterOwn are the families node_exporter exports about itself (its
// Go runtime, process and HTTP handler); hostd exports its own under the
// same names, so they are not compared.
var exporterOwn = []string{"go_", "process_", "promhttp_", "node_exporter_build_info"}

// families compares the metric families of hostd's /metrics with
// node_exporter's: every node_exporter family (but its own) must be in
// hostd's with the same type and label names.
func families(args []string) error {
	fs := flag.NewFlagSet("families", flag.ExitOnError)
	hostd := fs.String("hostd", "", "hostd's /metrics URL")
	ne := fs.String("node-exporter", "", "node_exporter's /metrics URL")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each scrape")
	_ = fs.Parse(args)
	ours, err := scrapeFamilies(*hostd, *timeout)
	if err != nil {
		return fmt.Errorf("hostd: %w", err)
	}
	theirs, err := scrapeFamilies(*ne, *timeout)
	if err != nil {
		return fmt.Errorf("node_exporter: %w", err)
	}
	var missing, differ []string
	compared := 0
	for name, mf := range theirs {
		if isExporterOwn(name) {
			continue
		}
		o, ok := ours[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		compared++
		if o.GetType() != mf.GetType() {
			differ = append(differ, fmt.Sprintf("%s: type %s, node_exporter %s", name, o.GetType(), mf.GetType()))
		}
		if name == "node_scrape_collector_duration_seconds" || name == "node_scrape_collector_success" {
			continue // the collector sets differ by design (hostd has no per-collector flags)
		}
		if a, b := familyLabels(o), familyLabels(mf); a != b {
			differ = append(differ, fmt.Sprintf("%s: labels [%s], node_exporter [%s]", name, a, b))
		}
	}
	sort.Strings(missing)
	sort.Strings(differ)
	fmt.Printf("node_exporter families compared: %d; missing from hostd: %d; type or label differences: %d\n", compared, len(missing), len(differ))
	for _, m := range missing {
		fmt.Println("  missing:", m)
	}
	for _, d := range differ {
		fmt.Println("  differs:", d)
	}
	if len(missing) > 0 || len(differ) > 0 {
		return errors.New("hostd's families differ from node_exporter's")
	}
	return nil
}

func isExporterOwn(name string) bool {
	for _, p := range exporterOwn {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func familyLabels(mf *dto.MetricFamily) string {
	set := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			set[l.GetName()] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func scrapeFamilies(url string, timeout time.Duration) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return mfs, nil
}
