package metrics

import (
	"embed"
	"io/fs"
	"net/http"
)

// webAssets is the built-in dashboard: plain HTML, CSS and JavaScript
// drawing SVG charts from the query API, with nothing loaded from outside.
//
//go:embed web
var webAssets embed.FS

// dashboardHandler serves the dashboard at "/".
func dashboardHandler() http.Handler {
	sub, err := fs.Sub(webAssets, "web")
	if err != nil {
		panic("metrics: embedded dashboard missing: " + err.Error())
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
