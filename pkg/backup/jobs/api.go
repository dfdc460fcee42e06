package jobs

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
)

// Routes implements service.LocalAPI.
func (s *Service) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteBackupJobs, Access: service.Read, Handler: s.handleJobs,
			Doc: "every job's status (JobList)"},
		{Method: http.MethodPost, Path: api.RouteBackupRun, Access: service.Write, Handler: s.handleRun,
			Doc: `run a job now ({"job": NAME}), replying with JSON lines (RunEvent) until the run ends`},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

func (s *Service) handleJobs(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.list())
}

// handleRun starts the job (or joins its running run) and streams the
// run's events. A client that goes away does not stop the run.
func (s *Service) handleRun(w http.ResponseWriter, r *http.Request) {
	var req RunRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("decode run request: %w", err))
		return
	}
	j := s.byName[req.Job]
	if j == nil {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no backup job %q (jobs: %s)", req.Job, s.jobNames()))
		return
	}
	run, joined, err := j.request()
	if err != nil {
		api.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(ev RunEvent) bool {
		if err := enc.Encode(ev); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	first := RunEvent{Type: EventStarted, Job: j.name, Time: s.clock.Now()}
	if joined {
		first.Type = EventJoined
	}
	if !send(first) {
		return
	}
	seen := -1
	for {
		ev, seq, changed := run.watch()
		if seq != seen && seq > 0 {
			seen = seq
			if !send(ev) {
				return
			}
			if ev.Type == EventDone {
				return
			}
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Service) jobNames() string {
	names := ""
	for i, j := range s.jobs {
		if i > 0 {
			names += ", "
		}
		names += j.name
	}
	return names
}
