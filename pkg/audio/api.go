package audio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hostd/hostd/internal/api"
)

// VolumeRequest is the body of POST /v1/audio/volume.
type VolumeRequest struct {
	// Kind is "sink" (default) or "source".
	Kind string `json:"kind,omitempty"`
	// Device is a name, index or unique part of a description; empty
	// means the default device.
	Device string `json:"device,omitempty"`
	// Volume is "40%", "+5%" or "-5%".
	Volume string `json:"volume"`
}

// MuteRequest is the body of POST /v1/audio/mute.
type MuteRequest struct {
	Kind   string `json:"kind,omitempty"`
	Device string `json:"device,omitempty"`
	// Mute is "on", "off" or "toggle".
	Mute string `json:"mute"`
}

// DefaultRequest is the body of POST /v1/audio/default.
type DefaultRequest struct {
	Kind   string `json:"kind,omitempty"`
	Device string `json:"device"`
}

// ProfileRequest is the body of POST /v1/audio/profile.
type ProfileRequest struct {
	// Card is a name, index or unique part of a name or description.
	Card    string `json:"card"`
	Profile string `json:"profile"`
}

// LocalAPI implements service.LocalAPI:
//
//	GET  /v1/audio/status   Status
//	POST /v1/audio/volume   VolumeRequest  → Device
//	POST /v1/audio/mute     MuteRequest    → Device
//	POST /v1/audio/default  DefaultRequest → Device
//	POST /v1/audio/profile  ProfileRequest → Card
func (s *Service) LocalAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audio/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Current(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
	mux.Handle("POST /v1/audio/volume", api.RequireWriter(handle(func(r *http.Request, req VolumeRequest) (any, error) {
		kind, err := ParseKind(req.Kind)
		if err != nil {
			return nil, err
		}
		return s.SetVolume(r.Context(), kind, req.Device, req.Volume)
	})))
	mux.Handle("POST /v1/audio/mute", api.RequireWriter(handle(func(r *http.Request, req MuteRequest) (any, error) {
		kind, err := ParseKind(req.Kind)
		if err != nil {
			return nil, err
		}
		return s.SetMute(r.Context(), kind, req.Device, req.Mute)
	})))
	mux.Handle("POST /v1/audio/default", api.RequireWriter(handle(func(r *http.Request, req DefaultRequest) (any, error) {
		kind, err := ParseKind(req.Kind)
		if err != nil {
			return nil, err
		}
		return s.SetDefault(r.Context(), kind, req.Device)
	})))
	mux.Handle("POST /v1/audio/profile", api.RequireWriter(handle(func(r *http.Request, req ProfileRequest) (any, error) {
		return s.SetProfile(r.Context(), req.Card, req.Profile)
	})))
	return mux
}

// handle decodes a JSON body into Req, runs fn and writes its result.
func handle[Req any](fn func(*http.Request, Req) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Req
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, fmt.Errorf("%w: decode request body: %v", ErrBadRequest, err))
			return
		}
		out, err := fn(r, req)
		if err != nil {
			writeError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, out)
	})
}

// writeError answers with the status code that fits err.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadVolume), errors.Is(err, ErrBadRequest), errors.Is(err, ErrAmbiguous):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNoDevice):
		code = http.StatusNotFound
	case errors.Is(err, ErrNotConnected):
		code = http.StatusServiceUnavailable
	}
	api.WriteError(w, code, err)
}
