package netcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
)

// QueryRequest is the body of POST /v1/netcfg/dns/query.
type QueryRequest struct {
	Name string `json:"name"`
	// Type is a record type such as A, AAAA, MX, TXT. Default: A.
	Type string `json:"type,omitempty"`
}

// QueryResult is the reply of POST /v1/netcfg/dns/query.
type QueryResult struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Rcode     string   `json:"rcode"`
	Source    string   `json:"source"` // hosts, cache, upstream or local
	Answer    []string `json:"answer"`
	Authority []string `json:"authority,omitempty"`
	Duration  string   `json:"duration"`
}

// FlushResult is the reply of POST /v1/netcfg/dns/flush.
type FlushResult struct {
	Flushed int `json:"flushed"`
}

// errDNSOff is returned by the DNS routes when the resolver is off.
var errDNSOff = errors.New("the dns resolver is off (set netcfg.dns.enable: true)")

// Routes implements service.LocalAPI. A DNS query only reads (it may fill
// the cache, as any client of the resolver does), so readers may ask one;
// flushing the cache is for writers.
func (s *Service) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteNetcfgStatus, Access: service.Read, Handler: s.handleStatus,
			Doc: "the service's details (StatusDetails)"},
		{Method: http.MethodPost, Path: api.RouteNetcfgDNSQuery, Access: service.Read, Handler: s.handleQuery,
			Doc: "resolve a name through hostd's resolver (QueryRequest -> QueryResult)"},
		{Method: http.MethodPost, Path: api.RouteNetcfgDNSFlush, Access: service.Write, Handler: s.handleFlush,
			Doc: "empty the DNS cache (FlushResult)"},
		{Method: http.MethodPost, Path: api.RouteNetcfgDHCPRenew, Access: service.Write, Handler: s.handleRenew,
			Doc: "renew a link's DHCPv4 and DHCPv6 leases now (RenewRequest -> RenewResult)"},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.Details())
}

func (s *Service) handleFlush(w http.ResponseWriter, r *http.Request) {
	if s.dns == nil {
		api.WriteError(w, http.StatusConflict, errDNSOff)
		return
	}
	n := s.dns.Flush()
	s.log.Info("dns cache flushed", "entries", n)
	api.WriteJSON(w, http.StatusOK, FlushResult{Flushed: n})
}

func (s *Service) handleQuery(w http.ResponseWriter, r *http.Request) {
	if s.dns == nil {
		api.WriteError(w, http.StatusConflict, errDNSOff)
		return
	}
	var req QueryRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("decode query request: %w", err))
		return
	}
	qtype, err := ParseQuery(req.Name, req.Type)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	start := s.env.Clock.Now()
	resp, source := s.dns.Query(r.Context(), req.Name, qtype)
	res := QueryResult{
		Name:     dns.Fqdn(req.Name),
		Type:     dns.TypeToString[qtype],
		Rcode:    dns.RcodeToString[resp.Rcode],
		Source:   source,
		Answer:   []string{},
		Duration: s.env.Clock.Now().Sub(start).Round(time.Microsecond).String(),
	}
	for _, rr := range resp.Answer {
		res.Answer = append(res.Answer, rr.String())
	}
	for _, rr := range resp.Ns {
		res.Authority = append(res.Authority, rr.String())
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// ParseQuery checks a name and a record type name ("" means A) and returns
// the type's number.
func ParseQuery(name, typ string) (uint16, error) {
	if name == "" {
		return 0, errors.New("query: name is empty")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return 0, fmt.Errorf("query: %q is not a domain name", name)
	}
	if typ == "" {
		return dns.TypeA, nil
	}
	t, ok := dns.StringToType[strings.ToUpper(typ)]
	if !ok || t == dns.TypeNone {
		return 0, fmt.Errorf("query: unknown record type %q", typ)
	}
	return t, nil
}
