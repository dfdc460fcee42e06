package metrics

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM") {
			return l
		}
	}
	return ""
}

func TestMemDbg(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Println("start heapinuse", ms.HeapInuse>>10, "sys", ms.Sys>>10, rss())
	store, _ := OpenStorage(StorageOptions{Dir: t.TempDir(), Retention: 15 * 24 * time.Hour}, nil)
	defer store.Close()
	nc, _ := NewNodeCollector(HostOptions{}, nil, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(nc)
	clock := newFakeClock(time.Now())
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Now: clock.Now}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Println("opened heapinuse", ms.HeapInuse>>10, "sys", ms.Sys>>10, rss())
	for i := 0; i < 300; i++ {
		clock.Add(time.Second)
		sc.Scrape(context.Background())
	}
	runtime.ReadMemStats(&ms)
	fmt.Println("after heapinuse", ms.HeapInuse>>10, "sys", ms.Sys>>10, "numgc", ms.NumGC, rss())
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Println("after gc heapinuse", ms.HeapInuse>>10, "sys", ms.Sys>>10, rss())
}
