package containers_test

import (
	"fmt"

	"github.com/hostd/hostd/pkg/containers"
)

func ExampleParseWatermark() {
	for _, s := range []string{"90%", "40GiB"} {
		w, err := containers.ParseWatermark(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		// 95 GB used of a 100 GB disk.
		fmt.Printf("%s exceeded: %v\n", w, w.Exceeded(95e9, 100e9))
	}
	// Output:
	// 90% exceeded: true
	// 40GiB exceeded: true
}

func ExampleStatusDetails_Summary() {
	d := containers.StatusDetails{
		Reachable:     true,
		EngineVersion: "20.10.24",
		APIVersion:    "1.41",
		DiskUsedBytes: 30 << 30,
		DiskSizeBytes: 120 << 30,
	}
	fmt.Println(d.Summary())
	d.Reachable = false
	fmt.Println(d.Summary())
	// Output:
	// engine 20.10.24 (API 1.41), disk 25%
	// engine unreachable, disk 25%
}
