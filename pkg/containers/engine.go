package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// DefaultHost is the engine address used when neither the config nor
// $DOCKER_HOST names one.
const DefaultHost = "unix:///var/run/docker.sock"

// engine is hostd's view of one Docker Engine: the API client plus the
// requests the pruner makes.
type engine struct {
	host string
	// cli is replaced by connect: the client caches the negotiated API
	// version without a lock, so a reconnect (where the engine may have
	// been upgraded) negotiates on a fresh client instead of re-negotiating
	// on one that other goroutines are using.
	cli atomic.Pointer[client.Client]
	// connectTimeout bounds each request of a connect and each liveness
	// ping; requestTimeout every other request (containers.connect_timeout
	// and containers.request_timeout).
	connectTimeout, requestTimeout time.Duration
}

// resolveHost picks the engine address: the config, else $DOCKER_HOST,
// else the default socket.
func resolveHost(configured string, getenv func(string) string) string {
	if configured != "" {
		return configured
	}
	if h := getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultHost
}

func newEngine(host string) (*engine, error) {
	cli, err := newClient(host)
	if err != nil {
		return nil, err
	}
	e := &engine{host: host, connectTimeout: DefaultConnectTimeout, requestTimeout: DefaultRequestTimeout}
	e.cli.Store(cli)
	return e, nil
}

func newClient(host string) (*client.Client, error) {
	cli, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation(), client.WithUserAgent("hostd"))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return cli, nil
}

// client is the current API client.
func (e *engine) client() *client.Client { return e.cli.Load() }

func (e *engine) Close() error { return e.client().Close() }

// engineInfo is what hostd reports about the engine.
type engineInfo struct {
	Version    string
	APIVersion string
	RootDir    string
}

// connect pings the engine, negotiating the API version, and reads its
// version and root directory.
func (e *engine) connect(ctx context.Context) (engineInfo, error) {
	cli, err := newClient(e.host)
	if err != nil {
		return engineInfo{}, err
	}
	if _, err := connectCall(ctx, e, "ping", func(ctx context.Context) (client.PingResult, error) {
		return cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	}); err != nil {
		cli.Close()
		return engineInfo{}, e.explain(err)
	}
	if old := e.cli.Swap(cli); old != nil {
		old.Close()
	}
	v, err := connectCall(ctx, e, "version", func(ctx context.Context) (client.ServerVersionResult, error) {
		return cli.ServerVersion(ctx, client.ServerVersionOptions{})
	})
	if err != nil {
		return engineInfo{}, e.explain(err)
	}
	info, err := connectCall(ctx, e, "info", func(ctx context.Context) (client.SystemInfoResult, error) {
		return cli.Info(ctx, client.InfoOptions{})
	})
	if err != nil {
		return engineInfo{}, e.explain(err)
	}
	return engineInfo{Version: v.Version, APIVersion: cli.ClientVersion(), RootDir: info.Info.DockerRootDir}, nil
}

// ErrPermission marks an engine socket hostd may not open.
var ErrPermission = errors.New("permission denied")

// engineError is an error explain already described.
type engineError struct{ error }

func (e engineError) Unwrap() error { return e.error }

// explain turns connection failures into errors that say what to do.
func (e *engine) explain(err error) error {
	var done engineError
	if err == nil || errors.As(err, &done) {
		return err
	}
	if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
		return engineError{fmt.Errorf("connect to docker engine at %s: %w: add the user hostd runs as to the docker group (usermod -aG docker USER) or run hostd as root", e.host, ErrPermission)}
	}
	if client.IsErrConnectionFailed(err) {
		return engineError{fmt.Errorf("connect to docker engine at %s: %w: %w", e.host, ErrUnreachable, err)}
	}
	return engineError{fmt.Errorf("docker engine at %s: %w", e.host, err)}
}

// ErrUnreachable marks an engine that does not answer.
var ErrUnreachable = errors.New("engine not reachable")

// call runs one request to the engine with a deadline of d. A request the
// engine leaves unanswered past d (while ctx itself goes on) fails with
// ErrUnreachable, naming the request, the engine and the option that
// sets d.
func call[T any](ctx context.Context, e *engine, d time.Duration, option, what string, f func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := f(cctx)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		err = engineError{fmt.Errorf("docker engine at %s: no answer to %s within %s (%s): %w", e.host, what, d, option, ErrUnreachable)}
	}
	return v, err
}

// request runs one request with the request deadline.
func request[T any](ctx context.Context, e *engine, what string, f func(context.Context) (T, error)) (T, error) {
	return call(ctx, e, e.requestTimeout, "containers.request_timeout", what, f)
}

// connectCall runs one request with the connect deadline.
func connectCall[T any](ctx context.Context, e *engine, what string, f func(context.Context) (T, error)) (T, error) {
	return call(ctx, e, e.connectTimeout, "containers.connect_timeout", what, f)
}

// ping checks that the engine still answers, with the connect deadline.
func (e *engine) ping(ctx context.Context) error {
	_, err := connectCall(ctx, e, "ping", func(ctx context.Context) (client.PingResult, error) {
		return e.client().Ping(ctx, client.PingOptions{})
	})
	return err
}

// snapshot lists every object the planner needs. Volume and build cache
// sizes cost a disk walk on the engine's side, so they are only asked for
// when those kinds are pruned.
func (e *engine) snapshot(ctx context.Context, withVolumes, withBuildCache bool) (snapshot, error) {
	var s snapshot
	cs, err := request(ctx, e, "container list", func(ctx context.Context) (client.ContainerListResult, error) {
		return e.client().ContainerList(ctx, client.ContainerListOptions{All: true, Size: true})
	})
	if err != nil {
		return s, fmt.Errorf("list containers: %w", e.explain(err))
	}
	for _, c := range cs.Items {
		ci := ctrInfo{ID: c.ID, ImageID: c.ImageID, Labels: c.Labels, State: string(c.State), Created: time.Unix(c.Created, 0), Size: c.SizeRw}
		if len(c.Names) > 0 {
			ci.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name != "" {
				ci.Volumes = append(ci.Volumes, m.Name)
			}
		}
		s.containers = append(s.containers, ci)
	}

	is, err := request(ctx, e, "image list", func(ctx context.Context) (client.ImageListResult, error) {
		return e.client().ImageList(ctx, client.ImageListOptions{All: true, SharedSize: true})
	})
	if err != nil {
		return s, fmt.Errorf("list images: %w", e.explain(err))
	}
	for _, i := range is.Items {
		ii := imgInfo{ID: i.ID, ParentID: i.ParentID, Labels: i.Labels, Created: time.Unix(i.Created, 0), Size: i.Size}
		if i.SharedSize > 0 && i.SharedSize <= i.Size {
			ii.Size = i.Size - i.SharedSize
		}
		for _, t := range i.RepoTags {
			if t != "<none>:<none>" {
				ii.Tags = append(ii.Tags, t)
			}
		}
		for _, d := range i.RepoDigests {
			if d != "<none>@<none>" {
				ii.Digests = append(ii.Digests, d)
			}
		}
		s.images = append(s.images, ii)
	}

	ns, err := request(ctx, e, "network list", func(ctx context.Context) (client.NetworkListResult, error) {
		return e.client().NetworkList(ctx, client.NetworkListOptions{})
	})
	if err != nil {
		return s, fmt.Errorf("list networks: %w", e.explain(err))
	}
	for _, n := range ns.Items {
		ni := netInfo{ID: n.ID, Name: n.Name, Driver: n.Driver, Labels: n.Labels, Created: time.Time(n.Created), Ingress: n.Ingress, Scope: n.Scope}
		if !predefinedNetwork(n.Name) {
			// The list leaves out endpoints on some engine versions;
			// inspect tells which containers are attached.
			in, err := request(ctx, e, "network inspect", func(ctx context.Context) (client.NetworkInspectResult, error) {
				return e.client().NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
			})
			switch {
			case cerrdefs.IsNotFound(err):
				continue
			case err != nil:
				return s, fmt.Errorf("inspect network %s: %w", n.Name, e.explain(err))
			}
			ni.Endpoints = len(in.Network.Containers)
		}
		s.networks = append(s.networks, ni)
	}

	if withVolumes {
		du, err := request(ctx, e, "volume disk usage", func(ctx context.Context) (client.DiskUsageResult, error) {
			return e.client().DiskUsage(ctx, client.DiskUsageOptions{Volumes: true})
		})
		if err != nil {
			return s, fmt.Errorf("volume disk usage: %w", e.explain(err))
		}
		oldAPI := versions.LessThan(e.client().ClientVersion(), "1.42")
		for _, v := range du.Volumes.Items {
			vi := volInfo{Name: v.Name, Driver: v.Driver, Labels: v.Labels, Size: -1}
			if t, err := time.Parse(time.RFC3339Nano, v.CreatedAt); err == nil {
				vi.Created = t
			}
			if v.UsageData != nil {
				vi.Size = v.UsageData.Size
			}
			_, vi.Anonymous = v.Labels["com.docker.volume.anonymous"]
			if oldAPI && anonymousVolume.MatchString(v.Name) {
				vi.Anonymous = true
			}
			s.volumes = append(s.volumes, vi)
		}
	}

	if withBuildCache {
		du, err := request(ctx, e, "build cache disk usage", func(ctx context.Context) (client.DiskUsageResult, error) {
			return e.client().DiskUsage(ctx, client.DiskUsageOptions{BuildCache: true})
		})
		if err != nil {
			return s, fmt.Errorf("build cache disk usage: %w", e.explain(err))
		}
		for _, b := range du.BuildCache.Items {
			bi := cacheInfo{ID: b.ID, Type: b.Type, InUse: b.InUse, Shared: b.Shared, Size: b.Size, Created: b.CreatedAt}
			if b.LastUsedAt != nil {
				bi.LastUsed = *b.LastUsedAt
			}
			s.buildCache = append(s.buildCache, bi)
		}
	}
	return s, nil
}

// remove removes one object without force: an object that came into use
// since the plan was made fails with a conflict and stays.
func (e *engine) remove(ctx context.Context, o Object, p AutoPrune) error {
	_, err := request(ctx, e, fmt.Sprintf("removal of %s %s", o.Kind, o.display()), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, e.removeNow(ctx, o, p)
	})
	if err != nil {
		return fmt.Errorf("remove %s %s: %w", o.Kind, o.display(), err)
	}
	return nil
}

// removeNow makes the requests that remove o.
func (e *engine) removeNow(ctx context.Context, o Object, p AutoPrune) error {
	var err error
	switch o.Kind {
	case KindContainer:
		_, err = e.client().ContainerRemove(ctx, o.ID, client.ContainerRemoveOptions{})
	case KindNetwork:
		_, err = e.client().NetworkRemove(ctx, o.ID, client.NetworkRemoveOptions{})
	case KindVolume:
		_, err = e.client().VolumeRemove(ctx, o.ID, client.VolumeRemoveOptions{})
	case KindImage:
		if len(o.refs) == 0 {
			_, err = e.client().ImageRemove(ctx, o.ID, client.ImageRemoveOptions{PruneChildren: true})
			break
		}
		// Each name is removed in turn, the way Docker's own image prune
		// does; the last one deletes the image.
		for _, ref := range o.refs {
			_, err = e.client().ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				break
			}
			err = nil
		}
	case KindBuildCache:
		f := make(client.Filters).Add("id", o.ID)
		var r client.BuildCachePruneResult
		r, err = e.client().BuildCachePrune(ctx, client.BuildCachePruneOptions{All: p.BuildCache.All, Filters: f})
		if err == nil && !slices.Contains(r.Report.CachesDeleted, o.ID) {
			err = errNotPruned
		}
	default:
		err = fmt.Errorf("unknown kind %q", o.Kind)
	}
	return err
}

func (o Object) display() string {
	if o.Name != "" && o.Name != o.ID {
		return o.Name
	}
	return shortID(o.ID)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// errNotPruned is a build cache record the engine did not remove (it came
// into use, or another record still needs it).
var errNotPruned = errors.New("engine kept it: in use or still referenced")

// skippable reports whether a removal failed because of the object
// itself (in use, removed concurrently, protected by the engine) rather
// than the engine, so the prune goes on.
func skippable(err error) bool {
	return errors.Is(err, errNotPruned) || cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) || cerrdefs.IsPermissionDenied(err) ||
		cerrdefs.IsFailedPrecondition(err) || cerrdefs.IsInvalidArgument(err)
}

// events subscribes to the engine's event stream from since on.
func (e *engine) events(ctx context.Context, since time.Time) (<-chan events.Message, <-chan error) {
	opts := client.EventsListOptions{
		Filters: make(client.Filters).Add("type", "container", "image"),
	}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	r := e.client().Events(ctx, opts)
	return r.Messages, r.Err
}

// imageID resolves an image reference to its ID.
func (e *engine) imageID(ctx context.Context, ref string) (string, error) {
	r, err := request(ctx, e, "image inspect", func(ctx context.Context) (client.ImageInspectResult, error) {
		return e.client().ImageInspect(ctx, ref)
	})
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// finishedAt returns when a stopped container finished, or the zero time.
func (e *engine) finishedAt(ctx context.Context, id string) time.Time {
	in, err := request(ctx, e, "container inspect", func(ctx context.Context) (client.ContainerInspectResult, error) {
		return e.client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	})
	if err != nil || in.Container.State == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, in.Container.State.FinishedAt)
	return t
}

// refineImageTimes replaces the whole-second creation times of the image
// list with the exact ones from inspecting each image, so images made in
// the same second still order by age.
func (e *engine) refineImageTimes(ctx context.Context, s *snapshot) {
	for i := range s.images {
		r, err := request(ctx, e, "image inspect", func(ctx context.Context) (client.ImageInspectResult, error) {
			return e.client().ImageInspect(ctx, s.images[i].ID)
		})
		if err != nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil {
			s.images[i].Created = t
		}
	}
}
