// Package console is the web console: a few static files (HTML, CSS and
// vanilla JavaScript modules, no build step) embedded in the binary and
// served by `serve` on its one HTTP server under /console/. The pages call
// the admin API (/api/v1) from the browser with the Bearer token the user
// typed on the login page, kept in sessionStorage for the tab's life and
// dropped by "Log out"; the server side holds no session and no state of its
// own, so every permission is the API's to check.
//
// Every response carries a Content-Security-Policy that allows only the
// console's own origin (no inline script or style, no framing), which is why
// the pages build their DOM with createElement and never with markup
// strings.
package console
