package console_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/console"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestBrowserLoginPageIsAccessible opens the console with no token: the
// login page is the one shown, its field is labelled and has the focus,
// the navigation is hidden, and the CSP blocks nothing the page needs
// (a violation would be reported by the tab).
func TestBrowserLoginPageIsAccessible(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	mux := http.NewServeMux()
	console.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := newBrowser(t, ctx)
	b.open(srv.URL + "/")
	b.waitText("h1", "Log in")
	checks := map[string]string{
		"the page title":                    `document.title`,
		"the focused element":               `document.activeElement.id`,
		"the token field's label":           `document.querySelector("label[for=token]").innerText`,
		"the token field's type":            `document.querySelector("#token").type`,
		"the navigation hidden":             `String(document.querySelector("#nav").hidden)`,
		"the URL after the redirect from /": `location.pathname + location.hash`,
		"the skip link's target":            `document.querySelector(".skip").getAttribute("href")`,
		"nothing stored before logging in":  `String(sessionStorage.length)`,
	}
	want := map[string]string{
		"the page title":                    "Log in · cohortsync console",
		"the focused element":               "token",
		"the token field's label":           "API token",
		"the token field's type":            "password",
		"the navigation hidden":             "true",
		"the URL after the redirect from /": "/console/#/segments",
		"the skip link's target":            "#main",
		"nothing stored before logging in":  "0",
	}
	for what, expr := range checks {
		if got := b.eval(expr); got != want[what] {
			t.Errorf("%s = %q, want %q", what, got, want[what])
		}
	}
}
