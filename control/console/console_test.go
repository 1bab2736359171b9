package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/control/console"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	console.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

func fetch(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, string(b)}
}

// TestServesFilesWithSecurityHeaders checks each embedded file is served
// with its type and the headers that keep the console to its own origin.
func TestServesFilesWithSecurityHeaders(t *testing.T) {
	srv := serve(t)
	tests := []struct {
		name, path, wantType, wantBody string
	}{
		{"the index at the console's root", "/console/", "text/html", `<script type="module" src="app.js">`},
		{"the stylesheet", "/console/console.css", "text/css", ":focus-visible"},
		{"the router module", "/console/app.js", "javascript", "loginPage"},
		{"the API client module", "/console/api.js", "javascript", "sessionStorage"},
		{"the chart module", "/console/chart.js", "javascript", "<svg"[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := fetch(t, srv.Client(), srv.URL+tt.path)
			if res.status != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", tt.path, res.status)
			}
			if ct := res.header.Get("Content-Type"); !strings.Contains(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %q in it", ct, tt.wantType)
			}
			if !strings.Contains(res.body, tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			for h, want := range map[string]string{
				"Content-Security-Policy": console.CSP,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := res.header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		})
	}
}

// TestCSPAllowsOnlySelf reads the policy itself: every directive is
// 'self' or 'none': nothing inline, no eval, no other origin.
func TestCSPAllowsOnlySelf(t *testing.T) {
	for _, d := range strings.Split(console.CSP, ";") {
		f := strings.Fields(d)
		if len(f) < 2 {
			t.Fatalf("directive %q has no source", d)
		}
		for _, src := range f[1:] {
			if src != "'self'" && src != "'none'" {
				t.Errorf("directive %s allows %s", f[0], src)
			}
		}
	}
	if !strings.HasPrefix(console.CSP, "default-src 'self';") {
		t.Errorf("CSP %q does not start with default-src 'self'", console.CSP)
	}
}

// TestRootRedirectsAndUnknownPathsAre404 checks "/" leads to the console
// and that nothing outside the embedded files is served.
func TestRootRedirectsAndUnknownPathsAre404(t *testing.T) {
	srv := serve(t)
	noFollow := *srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res := fetch(t, &noFollow, srv.URL+"/")
	if res.status != http.StatusFound || res.header.Get("Location") != console.Path {
		t.Errorf("GET / = %d to %q, want 302 to %s", res.status, res.header.Get("Location"), console.Path)
	}
	for _, p := range []string{"/console/nope.js", "/console/../console.go", "/console/web/index.html", "/other"} {
		if res := fetch(t, srv.Client(), srv.URL+p); res.status != http.StatusNotFound { // after any redirect
			t.Errorf("GET %s = %d, want 404", p, res.status)
		}
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/console/", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	post, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/ = %d, want 405", post.StatusCode)
	}
}

// TestPagesNeedNoInlineCode checks what the CSP would otherwise block in
// the browser: no inline script or style, no handler attributes, no
// markup built from strings, no token in a URL or a cookie.
func TestPagesNeedNoInlineCode(t *testing.T) {
	forbidden := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"an inline script", regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"a <style> element", regexp.MustCompile(`<style`)},
		{"a style attribute", regexp.MustCompile(`\sstyle=`)},
		{"an event handler attribute", regexp.MustCompile(`\son[a-z]+=["']`)},
		{"innerHTML", regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`)},
		{"eval", regexp.MustCompile(`\beval\(|new Function\(`)},
		{"a cookie", regexp.MustCompile(`document\.cookie`)},
		{"localStorage", regexp.MustCompile(`localStorage`)},
		{"the token in a URL", regexp.MustCompile(`[?&]token=`)},
	}
	err := fs.WalkDir(console.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(console.Files(), path)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if loc := f.re.FindIndex(b); loc != nil {
				t.Errorf("%s has %s: %q", path, f.what, b[loc[0]:min(loc[1]+20, len(b))])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
