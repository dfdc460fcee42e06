package containers

import (
	"fmt"
	"strings"

	"github.com/hostd/hostd/internal/service"
)

// Details returns the current status details.
func (s *Service) Details() StatusDetails {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := StatusDetails{
		Host:                s.eng.host,
		Reachable:           s.up,
		EngineVersion:       s.info.Version,
		APIVersion:          s.info.APIVersion,
		RootDir:             s.cfg.RootDir,
		DiskUsedBytes:       s.disk.Used,
		DiskSizeBytes:       s.disk.Size,
		HighWatermark:       s.cfg.AutoPrune.HighWatermark.String(),
		LowWatermark:        s.cfg.AutoPrune.LowWatermark.String(),
		LastPrune:           s.lastReport,
		NextPrune:           s.nextPrune,
		ReclaimedBytesTotal: s.reclaimed,
		TrackedImages:       s.state.tracked(),
	}
	if d.RootDir == "" {
		d.RootDir = s.info.RootDir
	}
	if s.connErr != nil {
		d.Error = s.connErr.Error()
	}
	if s.timer != nil {
		d.Schedule = s.cfg.AutoPrune.Schedule
	}
	return d
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	d := s.Details()
	return service.Status{Summary: d.Summary(), Details: d}
}

// Summary is the one-line form of d for `hostd status`.
func (d StatusDetails) Summary() string {
	var parts []string
	if d.Reachable {
		parts = append(parts, fmt.Sprintf("engine %s (API %s)", d.EngineVersion, d.APIVersion))
	} else {
		parts = append(parts, "engine unreachable")
	}
	if d.DiskSizeBytes > 0 {
		parts = append(parts, fmt.Sprintf("disk %.0f%%", float64(d.DiskUsedBytes)*100/float64(d.DiskSizeBytes)))
	}
	if d.LastPrune != nil {
		parts = append(parts, fmt.Sprintf("last prune %s freed %s", d.LastPrune.Finished.UTC().Format("Jan 2 15:04"),
			service.FormatBytes(d.LastPrune.ReclaimedBytes)))
	}
	if !d.NextPrune.IsZero() {
		parts = append(parts, "next "+d.NextPrune.UTC().Format("Jan 2 15:04"))
	}
	return strings.Join(parts, ", ")
}
