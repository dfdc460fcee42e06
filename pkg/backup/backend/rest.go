package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/hostd/hostd/internal/secrets"
)

// RESTOptions configures the REST backend (restic's REST protocol, as
// rest-server and `rclone serve restic` speak it).
type RESTOptions struct {
	// Username and Password are secret references for HTTP basic
	// authentication; unset: none. Never put them in the URL.
	Username, Password secrets.Ref
}

// REST stores the repository behind a server speaking restic's REST
// protocol, version 2: POST /?create=true, then HEAD, GET (with Range),
// POST and DELETE on /config and /TYPE/NAME, and GET /TYPE/ to list.
// The server lays the files out (data/XX/NAME) and writes each one
// atomically.
type REST struct {
	loc    string
	base   *url.URL // ends in "/"
	client *watchClient
	http   HTTPOptions
	user   string
	pass   string
	// diag adds what the server process said to an error (rclone).
	diag      func(error) error
	closeFn   func() error
	closeOnce sync.Once
	closeErr  error
}

var _ Backend = (*REST)(nil)
var _ BufferLoader = (*REST)(nil)
var _ WholeLoader = (*REST)(nil)

// restV2 is the media type of version 2 listings (names with sizes).
const restV2 = "application/vnd.x.restic.rest.v2"

// ParseREST returns the server URL of rest:http[s]://HOST[:PORT]/PATH,
// ending in "/". User information (credentials) in the URL is refused.
func ParseREST(repoURL string) (*url.URL, error) {
	s, ok := strings.CutPrefix(repoURL, "rest:")
	if !ok {
		return nil, fmt.Errorf("repository url %q: not a rest: url", repoURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse repository url: %w", urlErr(err))
	}
	if u.User != nil {
		return nil, fmt.Errorf("repository url %s: credentials do not belong in the url: give secret references (REST username and password)", redactURL(u))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("repository url %q: want rest:http[s]://HOST[:PORT]/PATH", repoURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// OpenREST returns the backend for rest:http[s]://HOST[:PORT]/PATH/. It
// makes no request.
func OpenREST(ctx context.Context, repoURL string, opts RESTOptions, hopts HTTPOptions, res *secrets.Resolver) (*REST, error) {
	u, err := ParseREST(repoURL)
	if err != nil {
		return nil, err
	}
	hopts = hopts.withDefaults()
	user, err := resolveSecret(ctx, res, opts.Username)
	if err != nil {
		return nil, fmt.Errorf("open %s: username: %w", "rest:"+u.String(), err)
	}
	pass, err := resolveSecret(ctx, res, opts.Password)
	if err != nil {
		return nil, fmt.Errorf("open %s: password: %w", "rest:"+u.String(), err)
	}
	tr, err := newTransport(hopts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", "rest:"+u.String(), err)
	}
	r := &REST{loc: "rest:" + u.String(), base: u, client: newWatchClient(tr, hopts), http: hopts, user: user, pass: pass,
		closeFn: func() error { tr.CloseIdleConnections(); return nil }}
	return r, nil
}

// Location returns the URL (it never holds credentials).
func (r *REST) Location() string { return r.loc }

// PackSizeHint returns RemotePackSize.
func (r *REST) PackSizeHint() int { return RemotePackSize }

func (r *REST) url(rel string) string {
	return r.base.ResolveReference(&url.URL{Path: rel}).String()
}

// relURL is the path of h below the base: /config, /TYPE/NAME (the
// server shards data itself).
func (h Handle) restPath() string {
	if h.Type == Config {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// request sends one request (no retries) and returns the response of a
// 2xx answer; other answers become errors (404: ErrNotExist).
func (r *REST) request(ctx context.Context, method, rel string, body []byte, hdr http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url(rel), rd)
	if err != nil {
		return nil, permanent{err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if r.user != "" || r.pass != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if r.diag != nil {
			err = r.diag(err)
		}
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(strings.ToValidUTF8(string(msg), "?"))}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w (%v)", fs.ErrNotExist, se)
	}
	return nil, se
}

func (r *REST) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return retry(ctx, r.http, fn)
}

// Create asks the server to lay out a repository; it fails if a config
// exists.
func (r *REST) Create(ctx context.Context) error {
	if _, err := r.Stat(ctx, Handle{Type: Config}); err == nil {
		return fmt.Errorf("create repository %s: %w", r.loc, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create repository %s: %w", r.loc, err)
	}
	err := r.do(ctx, func(ctx context.Context) error {
		resp, err := r.request(ctx, http.MethodPost, "?create=true", nil, nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	if err != nil {
		return fmt.Errorf("create repository %s: %w", r.loc, err)
	}
	return nil
}

// Save uploads data under h with one POST; the server writes it
// atomically.
func (r *REST) Save(ctx context.Context, h Handle, data []byte) error {
	err := r.do(ctx, func(ctx context.Context) error {
		resp, err := r.request(ctx, http.MethodPost, h.restPath(), data, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit))
		return resp.Body.Close()
	})
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

// Load reads length bytes of h at offset (length 0: to the end, within
// FileLimit).
func (r *REST) Load(ctx context.Context, h Handle, offset int64, length int) ([]byte, error) {
	return remoteLoad(ctx, r, h, offset, length)
}

// LoadInto reads len(buf) bytes of h at offset into buf.
func (r *REST) LoadInto(ctx context.Context, h Handle, offset int64, buf []byte) error {
	return remoteLoadInto(ctx, r.http, h, offset, buf, func(ctx context.Context, rng string) (ranged, error) {
		resp, err := r.request(ctx, http.MethodGet, h.restPath(), nil, http.Header{"Range": {rng}})
		if err != nil {
			return ranged{}, err
		}
		return ranged{body: resp.Body, status: resp.StatusCode, contentRange: resp.Header.Get("Content-Range"), length: -1}, nil
	})
}

// OpenRange starts reading length bytes of h at offset with one ranged
// GET (see RangeReader).
func (r *REST) OpenRange(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error) {
	return remoteOpenRange(ctx, r.http, h, offset, length, func(ctx context.Context, rng string) (ranged, error) {
		resp, err := r.request(ctx, http.MethodGet, h.restPath(), nil, http.Header{"Range": {rng}})
		if err != nil {
			return ranged{}, err
		}
		return ranged{body: resp.Body, status: resp.StatusCode, contentRange: resp.Header.Get("Content-Range"), length: resp.ContentLength}, nil
	})
}

// LoadWhole reads all of h with one GET, refusing a file over limit
// before reading it.
func (r *REST) LoadWhole(ctx context.Context, h Handle, limit int64) ([]byte, error) {
	return remoteLoadWhole(ctx, r.http, h, limit, func(ctx context.Context) (io.ReadCloser, int64, error) {
		resp, err := r.request(ctx, http.MethodGet, h.restPath(), nil, nil)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, 0, permanent{fmt.Errorf("server answered %s to a GET of the whole file", resp.Status)}
		}
		return resp.Body, resp.ContentLength, nil
	})
}

// Stat returns the size of h (HEAD).
func (r *REST) Stat(ctx context.Context, h Handle) (int64, error) {
	var size int64
	err := r.do(ctx, func(ctx context.Context) error {
		resp, err := r.request(ctx, http.MethodHead, h.restPath(), nil, nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		size = resp.ContentLength
		if size < 0 {
			if size, err = strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err != nil || size < 0 {
				return permanent{errors.New("server gave no size")}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h, err)
	}
	return size, nil
}

// List calls fn for each file of type t, decoding the listing as it
// arrives: memory stays bounded however long it is.
func (r *REST) List(ctx context.Context, t FileType, fn func(string, int64) error) error {
	hdr := http.Header{"Accept": {restV2}}
	// A listing that breaks off after fn saw part of it is not retried:
	// a retry would repeat names.
	var called bool
	err := r.do(ctx, func(ctx context.Context) error {
		err := r.listOnce(ctx, t, hdr, fn, &called)
		if err != nil && called {
			return permanent{err}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// listOnce is one attempt of List; called records whether fn was called.
func (r *REST) listOnce(ctx context.Context, t FileType, hdr http.Header, fn func(string, int64) error, called *bool) error {
	resp, err := r.request(ctx, http.MethodGet, string(t)+"/", nil, hdr)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no directory yet: no files
		}
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, restV2) {
		return permanent{fmt.Errorf("server does not speak version 2 of the REST protocol (listing of type %q)", ct)}
	}
	br := &budgetReader{r: resp.Body, budget: listEntryBudget}
	dec := json.NewDecoder(br)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return permanent{fmt.Errorf("listing is not a JSON array (%v)", err)}
	}
	for n := 0; dec.More(); n++ {
		if n >= maxListed {
			return permanent{fmt.Errorf("more than %d files", maxListed)}
		}
		var e struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		}
		if err := dec.Decode(&e); err != nil {
			if retryable(err) {
				return err
			}
			return permanent{fmt.Errorf("listing: %w", err)}
		}
		br.budget = listEntryBudget
		if e.Name == "" || strings.ContainsAny(e.Name, "/\\") || e.Name == "." || e.Name == ".." || isTemp(e.Name) || e.Size < 0 {
			continue
		}
		*called = true
		if err := fn(e.Name, e.Size); err != nil {
			return permanent{err}
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	return nil
}

// listEntryBudget bounds the bytes of one listing entry (a name is a
// 64-digit ID), so a hostile listing cannot make the decoder buffer an
// endless value.
const listEntryBudget = 64 << 10

// budgetReader fails once more than budget bytes were read since the
// budget was last set.
type budgetReader struct {
	r      io.Reader
	budget int
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.budget <= 0 {
		return 0, fmt.Errorf("listing entry longer than %d bytes", listEntryBudget)
	}
	if len(p) > b.budget {
		p = p[:b.budget]
	}
	n, err := b.r.Read(p)
	b.budget -= n
	return n, err
}

// Remove deletes h.
func (r *REST) Remove(ctx context.Context, h Handle) error {
	err := r.do(ctx, func(ctx context.Context) error {
		resp, err := r.request(ctx, http.MethodDelete, h.restPath(), nil, nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// ListTemp lists nothing: the protocol has no temporary files (the
// server writes each file atomically, and keeps its own).
func (r *REST) ListTemp(context.Context, func(TempFile) error) error { return nil }

// RemoveTemp refuses every name: ListTemp names none.
func (r *REST) RemoveTemp(_ context.Context, rel string) error {
	if err := checkTemp(rel); err != nil {
		return err
	}
	return fmt.Errorf("remove temporary file %q: %s has no temporary files", rel, r.loc)
}

// Close releases the connections (and for rclone, ends the process).
func (r *REST) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.closeFn() })
	return r.closeErr
}
