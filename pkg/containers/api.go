package containers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
)

// Routes implements service.LocalAPI.
func (s *Service) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteContainersStatus, Access: service.Read, Handler: s.handleStatus,
			Doc: "the service's details (StatusDetails)"},
		{Method: http.MethodPost, Path: api.RouteContainersPrune, Access: service.Write, Handler: s.handlePrune,
			Doc: "prune now, or a dry run (PruneRequest -> Report)"},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.Details())
}

// maxRequestBody bounds request bodies; a PruneRequest is a few bytes.
const maxRequestBody = 4 << 10

func (s *Service) handlePrune(w http.ResponseWriter, r *http.Request) {
	var req PruneRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("read prune request: %w", err))
		return
	}
	if len(body) > maxRequestBody {
		api.WriteError(w, http.StatusRequestEntityTooLarge, errors.New("prune request larger than 4 KiB"))
		return
	}
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("decode prune request: %w", err))
			return
		}
	}
	rep, err := s.Prune(r.Context(), "manual", req.DryRun)
	switch {
	case errors.Is(err, ErrEngineDown):
		api.WriteError(w, http.StatusServiceUnavailable, err)
	case err != nil && rep == nil:
		api.WriteError(w, http.StatusInternalServerError, err)
	default:
		// A prune cut short by the engine going away still reports what
		// it removed; Report.Error says why it stopped.
		api.WriteJSON(w, http.StatusOK, rep)
	}
}

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
