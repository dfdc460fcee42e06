package audio

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics publishes the audio service's state. Device gauges are collected
// from the latest snapshot, so a device that goes away stops being exported.
type metrics struct {
	s *Service

	reconnects prometheus.Counter
	actions    *prometheus.CounterVec

	connected *prometheus.Desc
	devices   *prometheus.Desc
	volume    *prometheus.Desc
	muted     *prometheus.Desc
	quantum   *prometheus.Desc
}

func newMetrics(s *Service) *metrics {
	return &metrics{
		s: s,
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_audio_reconnects_total",
			Help: "Connections to the audio server made after the first.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_audio_policy_actions_total",
			Help: "Changes made by the audio policy, by reason (preferred, limit, restore, startup).",
		}, []string{"reason"}),
		connected: prometheus.NewDesc("hostd_audio_connected",
			"1 while hostd is connected to the audio server.", nil, nil),
		devices: prometheus.NewDesc("hostd_audio_devices",
			"Devices the audio server has, by kind (sink, source, card); monitor sources are not counted.", []string{"kind"}, nil),
		volume: prometheus.NewDesc("hostd_audio_volume_ratio",
			"Volume of the loudest channel of a sink or source (1 is 100%).", []string{"kind", "device"}, nil),
		muted: prometheus.NewDesc("hostd_audio_muted",
			"1 if a sink or source is muted.", []string{"kind", "device"}, nil),
		quantum: prometheus.NewDesc("hostd_audio_quantum_samples",
			"PipeWire's effective clock quantum.", nil, nil),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.reconnects, m.actions, m} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.connected, m.devices, m.volume, m.muted, m.quantum} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Snapshot()
	ch <- prometheus.MustNewConstMetric(m.connected, prometheus.GaugeValue, boolFloat(st.Connected))
	if !st.Connected {
		return
	}
	sources := 0
	for _, kind := range []Kind{KindSink, KindSource} {
		for _, d := range st.devices(kind) {
			if d.Monitor {
				continue
			}
			if kind == KindSource {
				sources++
			}
			ch <- prometheus.MustNewConstMetric(m.volume, prometheus.GaugeValue, toPercent(maxVolume(d.rawVolumes()))/100, string(kind), d.Name)
			ch <- prometheus.MustNewConstMetric(m.muted, prometheus.GaugeValue, boolFloat(d.Mute), string(kind), d.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.devices, prometheus.GaugeValue, float64(len(st.Sinks)), "sink")
	ch <- prometheus.MustNewConstMetric(m.devices, prometheus.GaugeValue, float64(sources), "source")
	ch <- prometheus.MustNewConstMetric(m.devices, prometheus.GaugeValue, float64(len(st.Cards)), "card")
	if st.Quantum != nil {
		ch <- prometheus.MustNewConstMetric(m.quantum, prometheus.GaugeValue, float64(st.Quantum.Effective))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
