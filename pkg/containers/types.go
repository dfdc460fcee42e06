package containers

import "time"

// Kind is a kind of Docker object a prune removes.
type Kind string

// The kinds, in the order a prune removes them (the order of
// `docker system prune`).
const (
	KindContainer  Kind = "container"
	KindNetwork    Kind = "network"
	KindVolume     Kind = "volume"
	KindImage      Kind = "image"
	KindBuildCache Kind = "build_cache"
)

// Kinds lists every Kind in prune order.
func Kinds() []Kind {
	return []Kind{KindContainer, KindNetwork, KindVolume, KindImage, KindBuildCache}
}

// Object is one Docker object a prune removes or would remove.
type Object struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	// Name is the container or network name, the image's first tag, or the
	// volume name.
	Name string `json:"name,omitempty"`
	// Size is what removing the object frees, in bytes, as the engine
	// reports it: a container's writable layer, an image's unique size
	// (layers shared with other images not counted), a volume's usage.
	Size    int64     `json:"size"`
	Created time.Time `json:"created,omitzero"`
	// LastUsed is when an image was last used by a container, as far as
	// hostd knows (disk-pressure mode only).
	LastUsed time.Time `json:"last_used,omitzero"`
	// Reason says why the object goes: "stopped", "unused", "dangling",
	// "disk pressure".
	Reason string `json:"reason,omitempty"`

	// refs are the names an image is removed by (each tag and digest
	// reference); empty means remove by ID.
	refs []string
}

// Skipped is an object a prune meant to remove but left alone.
type Skipped struct {
	Object
	Error string `json:"error"`
}

// PruneRequest is the body of POST /v1/containers/prune.
type PruneRequest struct {
	DryRun bool `json:"dry_run"`
}

// Report is the result of one prune.
type Report struct {
	// Trigger is what started the prune: "manual", "schedule" or
	// "disk_pressure".
	Trigger  string    `json:"trigger"`
	DryRun   bool      `json:"dry_run"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Objects are the objects removed, or that would be with DryRun.
	Objects []Object `json:"objects"`
	// Skipped are objects found in use or already gone at removal time.
	Skipped []Skipped `json:"skipped,omitempty"`
	// TotalBytes is the sum of the sizes of Objects.
	TotalBytes int64 `json:"total_bytes"`
	// ReclaimedBytes is what the removal freed (0 with DryRun).
	ReclaimedBytes int64 `json:"reclaimed_bytes"`
	// Error is set when the prune stopped early (the engine went away).
	Error string `json:"error,omitempty"`
}

// StatusDetails is the Details of the service's status and the body of
// GET /v1/containers/status.
type StatusDetails struct {
	// Host is the engine address hostd talks to.
	Host string `json:"host"`
	// Reachable is whether the last request to the engine succeeded.
	Reachable bool `json:"reachable"`
	// Error is the last connection problem while unreachable.
	Error string `json:"error,omitempty"`
	// EngineVersion and APIVersion are the engine's version and the
	// negotiated API version.
	EngineVersion string `json:"engine_version,omitempty"`
	APIVersion    string `json:"api_version,omitempty"`
	// RootDir is the filesystem directory disk use is measured on.
	RootDir string `json:"root_dir,omitempty"`
	// DiskUsedBytes and DiskSizeBytes describe the filesystem holding
	// RootDir.
	DiskUsedBytes uint64 `json:"disk_used_bytes"`
	DiskSizeBytes uint64 `json:"disk_size_bytes"`
	// HighWatermark and LowWatermark are the configured thresholds.
	HighWatermark string `json:"high_watermark,omitempty"`
	LowWatermark  string `json:"low_watermark,omitempty"`
	// Schedule is the configured schedule ("" when auto_prune is off).
	Schedule string `json:"schedule,omitempty"`
	// LastPrune is the last prune that removed objects or tried to.
	LastPrune *Report `json:"last_prune,omitempty"`
	// NextPrune is the next scheduled prune.
	NextPrune time.Time `json:"next_prune,omitzero"`
	// ReclaimedBytesTotal is every byte reclaimed since hostd started.
	ReclaimedBytesTotal int64 `json:"reclaimed_bytes_total"`
	// TrackedImages is how many images have a known last use.
	TrackedImages int `json:"tracked_images"`
}
