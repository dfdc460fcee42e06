package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/hostd/hostd/internal/service"
)

// RemoteWriter pushes samples to one receiver with the Remote Write 1.0
// protocol (snappy-compressed protobuf WriteRequest). Samples wait in a
// bounded queue: while the receiver is down the sender retries with
// exponential backoff, and when the queue is full the oldest samples are
// dropped and counted. A receiver answering 4xx (other than 429) rejected
// the data for good; that batch is dropped and counted, not retried.
type RemoteWriter struct {
	// ExternalLabels are added to every series pushed, unless the series
	// has a label of that name, as Prometheus' global external_labels
	// are. Set before Run.
	ExternalLabels labels.Labels
	// Clock times the retries and LastSent. Default: the real clock.
	// Set before Run.
	Clock service.Clock

	cfg    RemoteWriteConfig
	client *http.Client
	auth   func(*http.Request)
	logger *slog.Logger

	mu      sync.Mutex
	queue   []Sample
	removed int64 // samples ever removed from the queue's head
	wake    chan struct{}
	stats   RemoteWriteStatus
	failing bool
}

// RemoteWriteStatus is a receiver's entry in the service status.
type RemoteWriteStatus struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Queued    int       `json:"queued"`
	Sent      int64     `json:"sent"`
	Dropped   int64     `json:"dropped"`
	Failed    int64     `json:"failed_pushes"`
	LastError string    `json:"last_error,omitempty"`
	LastSent  time.Time `json:"last_sent,omitzero"`
}

// NewRemoteWriter builds a writer; auth, if set, adds credentials to each
// request.
func NewRemoteWriter(cfg RemoteWriteConfig, auth func(*http.Request), logger *slog.Logger) *RemoteWriter {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteWriter{
		cfg: cfg,
		// The timeout covers the whole push: connect, TLS handshake,
		// sending the body and reading the answer.
		client: &http.Client{Timeout: cfg.Timeout},
		auth:   auth,
		logger: logger.With("remote_write", cfg.Name),
		wake:   make(chan struct{}, 1),
		stats:  RemoteWriteStatus{Name: cfg.Name, URL: redactURL(cfg.URL)},
	}
}

func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…" // query strings may carry tokens
	}
	return s
}

// Enqueue adds samples, dropping the oldest beyond the queue size.
func (w *RemoteWriter) Enqueue(samples []Sample) {
	w.mu.Lock()
	w.queue = append(w.queue, samples...)
	if over := len(w.queue) - w.cfg.QueueSize; over > 0 {
		w.queue = append(w.queue[:0:0], w.queue[over:]...)
		w.removed += int64(over)
		w.stats.Dropped += int64(over)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Status returns the writer's counters.
func (w *RemoteWriter) Status() RemoteWriteStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Queued = len(w.queue)
	return s
}

// Run sends queued samples until ctx ends.
func (w *RemoteWriter) Run(ctx context.Context) error {
	clock := w.Clock
	if clock == nil {
		clock = service.RealClock{}
	}
	backoff := service.Backoff{Min: w.cfg.MinBackoff, Max: w.cfg.MaxBackoff, Clock: clock}
	for {
		w.mu.Lock()
		n := min(len(w.queue), w.cfg.BatchSize)
		batch := append([]Sample(nil), w.queue[:n]...)
		batchStart := w.removed
		w.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-w.wake:
				continue
			}
		}
		err := w.send(ctx, batch)
		var perm *permanentError
		switch {
		case err == nil || errors.As(err, &perm):
			w.mu.Lock()
			// The queue may have dropped samples from its head meanwhile;
			// remove only what is left of this batch.
			drop := min(max(batchStart+int64(n)-w.removed, 0), int64(len(w.queue)))
			w.queue = w.queue[drop:]
			w.removed += drop
			if err == nil {
				w.stats.Sent += int64(n)
				w.stats.LastSent = clock.Now()
				w.stats.LastError = ""
			} else {
				w.stats.Dropped += int64(n)
				w.stats.LastError = err.Error()
			}
			wasFailing := w.failing
			w.failing = err != nil
			w.mu.Unlock()
			if err != nil {
				w.logger.Warn("remote write rejected a batch; dropped", "samples", n, "err", err)
			} else if wasFailing {
				w.logger.Info("remote write recovered")
			}
			backoff.Reset()
		default:
			if ctx.Err() != nil {
				return nil
			}
			w.mu.Lock()
			w.stats.Failed++
			w.stats.LastError = err.Error()
			first := !w.failing
			w.failing = true
			w.mu.Unlock()
			if first {
				w.logger.Warn("remote write failed; retrying with backoff", "err", err)
			}
			if backoff.Wait(ctx) != nil {
				return nil
			}
		}
	}
}

// errPushTimeout marks a push the receiver left unanswered past the timeout.
var errPushTimeout = errors.New("timeout")

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// EncodeWriteRequest builds the snappy-compressed Remote Write 1.0 body
// for samples: one TimeSeries per label set, samples in time order.
func EncodeWriteRequest(samples []Sample) ([]byte, error) {
	return encodeWriteRequest(samples, labels.EmptyLabels())
}

// encodeWriteRequest is EncodeWriteRequest with external labels added to
// every series that does not have a label of the same name.
func encodeWriteRequest(samples []Sample, external labels.Labels) ([]byte, error) {
	type series struct {
		ls  labels.Labels
		smp []prompb.Sample
	}
	byHash := map[uint64]*series{}
	var order []*series
	for _, s := range samples {
		h := s.Labels.Hash()
		se, ok := byHash[h]
		if !ok {
			se = &series{ls: s.Labels}
			byHash[h] = se
			order = append(order, se)
		}
		se.smp = append(se.smp, prompb.Sample{Value: s.V, Timestamp: s.T})
	}
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(order))}
	for _, se := range order {
		sort.Slice(se.smp, func(i, j int) bool { return se.smp[i].Timestamp < se.smp[j].Timestamp })
		ts := prompb.TimeSeries{Samples: se.smp}
		ls := se.ls
		if !external.IsEmpty() {
			b := labels.NewBuilder(se.ls)
			external.Range(func(l labels.Label) {
				if !se.ls.Has(l.Name) {
					b.Set(l.Name, l.Value)
				}
			})
			ls = b.Labels()
		}
		ls.Range(func(l labels.Label) {
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		})
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

func (w *RemoteWriter) send(ctx context.Context, batch []Sample) error {
	body, err := encodeWriteRequest(batch, w.ExternalLabels)
	if err != nil {
		return &permanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "hostd")
	if w.auth != nil {
		w.auth(req)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// Credentials travel in headers, never in the error; the URL's
		// query string (which may hold a token) is cut from it.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() && ctx.Err() == nil {
				return fmt.Errorf("push %d samples to %s: no answer within %s (metrics.remote_write[].timeout): %w",
					len(batch), redactURL(w.cfg.URL), w.cfg.Timeout, errPushTimeout)
			}
			err = ue.Err
		}
		return fmt.Errorf("push %d samples to %s: %w", len(batch), redactURL(w.cfg.URL), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return fmt.Errorf("push %d samples: %s: %s", len(batch), resp.Status, strings.TrimSpace(string(msg)))
	default:
		return &permanentError{fmt.Errorf("push %d samples: %s: %s", len(batch), resp.Status, strings.TrimSpace(string(msg)))}
	}
}
