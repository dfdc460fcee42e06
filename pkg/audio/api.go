package audio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
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

// Routes implements service.LocalAPI.
func (s *Service) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteAudioStatus, Access: service.Read, Handler: s.handleStatus,
			Doc: "the server's devices, cards and defaults (Status)"},
		{Method: http.MethodPost, Path: api.RouteAudioVolume, Access: service.Write, Handler: handle(s.handleVolume),
			Doc: "set a device's volume (VolumeRequest -> Device)"},
		{Method: http.MethodPost, Path: api.RouteAudioMute, Access: service.Write, Handler: handle(s.handleMute),
			Doc: "mute or unmute a device (MuteRequest -> Device)"},
		{Method: http.MethodPost, Path: api.RouteAudioDefault, Access: service.Write, Handler: handle(s.handleDefault),
			Doc: "set the default sink or source (DefaultRequest -> Device)"},
		{Method: http.MethodPost, Path: api.RouteAudioProfile, Access: service.Write, Handler: handle(s.handleProfile),
			Doc: "set a card's profile (ProfileRequest -> Card)"},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Current(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, st)
}

func (s *Service) handleVolume(r *http.Request, req VolumeRequest) (any, error) {
	kind, err := ParseKind(req.Kind)
	if err != nil {
		return nil, err
	}
	return s.SetVolume(r.Context(), kind, req.Device, req.Volume)
}

func (s *Service) handleMute(r *http.Request, req MuteRequest) (any, error) {
	kind, err := ParseKind(req.Kind)
	if err != nil {
		return nil, err
	}
	return s.SetMute(r.Context(), kind, req.Device, req.Mute)
}

func (s *Service) handleDefault(r *http.Request, req DefaultRequest) (any, error) {
	kind, err := ParseKind(req.Kind)
	if err != nil {
		return nil, err
	}
	return s.SetDefault(r.Context(), kind, req.Device)
}

func (s *Service) handleProfile(r *http.Request, req ProfileRequest) (any, error) {
	return s.SetProfile(r.Context(), req.Card, req.Profile)
}

// handle decodes a JSON body into Req, runs fn and writes its result.
func handle[Req any](fn func(*http.Request, Req) (any, error)) http.HandlerFunc {
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
