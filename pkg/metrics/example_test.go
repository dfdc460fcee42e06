package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/pkg/metrics"
)

// A node collector exports node_exporter's metrics for any registry.
func ExampleNewNodeCollector() {
	nc, err := metrics.NewNodeCollector(metrics.HostOptions{ProcPath: "testdata/proc", SysPath: "testdata/sys"}, []string{"loadavg"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(nc)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "node_load") {
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output:
	// node_load1 0.5
	// node_load15 0.34
	// node_load5 0.69
}

// A Scraper appends a registry into the TSDB; the API answers PromQL over it.
func ExampleNewAPI() {
	dir, _ := os.MkdirTemp("", "tsdb-example-")
	defer os.RemoveAll(dir)
	store, err := metrics.OpenStorage(metrics.StorageOptions{Dir: dir, Retention: 24 * time.Hour}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "room_temperature_celsius", Help: "Room temperature."})
	reg.MustRegister(g)
	g.Set(21.5)
	clock := servicetest.NewFakeClock(time.Unix(1_700_000_000, 0))
	sc := &metrics.Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	if _, err := sc.Scrape(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	api := metrics.NewAPI(store.DB, sc.Metadata, metrics.APIOptions{}, nil)
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/query?query=room_temperature_celsius*2&time=1700000000", nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Println(string(body))
	// Output:
	// {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"43"]}]}}
}
