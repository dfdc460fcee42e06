package api

// The local API's route paths, declared once: the daemon and each service
// mount their handlers on them and the CLI calls them. Every route is
// versioned under /v1/; a service's routes live under /v1/<service>/.
//
// Each route is declared, with its method and who may call it, in its
// owner's route table (a []service.Route): the daemon's in
// internal/daemon/routes.go, each service's in its api.go. The daemon
// checks that permission once, before the handler runs.

// The daemon's own routes (internal/daemon).
const (
	// RouteStatus is GET: the daemon's and every service's status (Status).
	RouteStatus = "/v1/status"
	// RouteVersion is GET: hostd's version (Version).
	RouteVersion = "/v1/version"
	// RouteConfig is GET: the effective config, redacted, as YAML
	// (?format=json: JSON).
	RouteConfig = "/v1/config"
	// RouteConfigReload is POST, writers only: re-read the config file
	// (ConfigReload).
	RouteConfigReload = "/v1/config/reload"
	// RouteRoutes is GET: the route table, the daemon's and every running
	// service's ([]RouteInfo).
	RouteRoutes = "/v1/routes"
	// RouteServicePrefix is the pattern the daemon hands to services:
	// /v1/<service>/... goes to that service's LocalAPI.
	RouteServicePrefix = "/v1/{service}/"
)

// The proxy service's routes (pkg/proxy).
const (
	// RouteProxyStatus is GET: the service's details.
	RouteProxyStatus = "/v1/proxy/status"
	// RouteProxyTest is POST, writers only: probe the proxy now.
	RouteProxyTest = "/v1/proxy/test"
)

// The backup service's routes (pkg/backup/jobs).
const (
	// RouteBackupJobs is GET: every job's state.
	RouteBackupJobs = "/v1/backup/jobs"
	// RouteBackupRun is POST, writers only: run a job now, streaming its
	// progress as JSON lines.
	RouteBackupRun = "/v1/backup/run"
)

// The metrics service's routes (pkg/metrics).
const (
	// RouteMetricsQuery is GET: a PromQL instant query, answered as
	// /api/v1/query is.
	RouteMetricsQuery = "/v1/metrics/query"
	// RouteMetricsQueryRange is GET: a PromQL range query, answered as
	// /api/v1/query_range is.
	RouteMetricsQueryRange = "/v1/metrics/query_range"
	// RouteMetricsAlerts is GET: the pending and firing alerts, answered
	// as /api/v1/alerts is.
	RouteMetricsAlerts = "/v1/metrics/alerts"
)

// The audio service's routes (pkg/audio).
const (
	// RouteAudioStatus is GET: the service's details.
	RouteAudioStatus = "/v1/audio/status"
	// RouteAudioVolume is POST, writers only: set a device's volume.
	RouteAudioVolume = "/v1/audio/volume"
	// RouteAudioMute is POST, writers only: mute or unmute a device.
	RouteAudioMute = "/v1/audio/mute"
	// RouteAudioDefault is POST, writers only: set the default sink or
	// source.
	RouteAudioDefault = "/v1/audio/default"
	// RouteAudioProfile is POST, writers only: set a card's profile.
	RouteAudioProfile = "/v1/audio/profile"
)

// The netcfg service's routes (pkg/netcfg).
const (
	// RouteNetcfgStatus is GET: the service's details.
	RouteNetcfgStatus = "/v1/netcfg/status"
	// RouteNetcfgDNSQuery is POST, open to readers: resolve a name
	// through hostd's resolver.
	RouteNetcfgDNSQuery = "/v1/netcfg/dns/query"
	// RouteNetcfgDNSFlush is POST, writers only: empty the DNS cache.
	RouteNetcfgDNSFlush = "/v1/netcfg/dns/flush"
	// RouteNetcfgDHCPRenew is POST, writers only: renew a link's DHCP lease now.
	RouteNetcfgDHCPRenew = "/v1/netcfg/dhcp/renew"
)

// The containers service's routes (pkg/containers).
const (
	// RouteContainersStatus is GET: the service's details.
	RouteContainersStatus = "/v1/containers/status"
	// RouteContainersPrune is POST, writers only: prune now (or a dry
	// run).
	RouteContainersPrune = "/v1/containers/prune"
)

// RouteInfo is one route of the table served at RouteRoutes.
type RouteInfo struct {
	// Method is GET or POST.
	Method string `json:"method"`
	// Path is one of the constants above.
	Path string `json:"path"`
	// Access is "read" (every client that may open the socket) or
	// "write" (root and the daemon's user only).
	Access string `json:"access"`
	// Service owns the route; empty for the daemon's own routes.
	Service string `json:"service,omitempty"`
	// Doc says what the route does.
	Doc string `json:"doc,omitempty"`
}
