package proxy

import (
	"io"
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkProxyDownload downloads 1 MiB per iteration through each
// inbound and the VLESS+REALITY server (all on loopback). bench/proxy/run.sh
// compares the same paths against a standalone xray client.
func BenchmarkProxyDownload(b *testing.B) {
	for _, inbound := range []string{"socks5h", "http"} {
		b.Run(inbound, func(b *testing.B) {
			w := newWorld(b)
			cfg := w.config(b)
			r := start(b, w, cfg)
			r.waitState(b, StateUp)
			addr := cfg.SOCKS.Listen
			if inbound == "http" {
				addr = cfg.HTTP.Listen
			}
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: inbound, Host: addr})}}
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Get("http://" + destHost + "/big")
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != 1<<20 {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}
