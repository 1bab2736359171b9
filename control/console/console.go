package console

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the console is served; the pages' links are relative to it.
const Path = "/console/"

// CSP is the Content-Security-Policy of every console response: the
// console's own origin only, for scripts, styles, images and the API calls;
// no plugins, no <base>, no framing by another page.
const CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed web
var files embed.FS

// Registrar is where the console's routes are registered: an
// *http.ServeMux or serve's *httpserver.Server.
type Registrar interface {
	Handle(pattern string, h http.Handler)
}

// Register serves the console at Path and redirects "/" (exactly) to it.
func Register(r Registrar) {
	r.Handle("GET "+Path, Handler())
	r.Handle("GET /{$}", http.RedirectHandler(Path, http.StatusFound))
}

// Handler serves the console's files under Path (index.html at Path
// itself) with the security headers; any other path is a 404.
func Handler() http.Handler {
	fsrv := http.StripPrefix(Path, http.FileServerFS(Files()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary: revalidate rather than serve a
		// stale page against a newer API.
		h.Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

// Files are the console's files (index.html at the root).
func Files() fs.FS {
	web, err := fs.Sub(files, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/: a build error, not a runtime one
	}
	return web
}
