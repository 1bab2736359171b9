package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// serveWorstShutdown is how long serve takes at worst to exit after
// SIGTERM, every call it still makes hitting its timeout, for mappings of
// at most dests destinations. In parallel: the consumer's part (its
// shutdown timeout plus a second), the HTTP server's, and the scheduler's
// run in progress, which stops and then, one after the other, releases its
// segment's lease, keeps its exclusions, ends its running record's write,
// lists the topic's ends for its barrier (a produce request's timeout),
// writes each destination's final record and records its claim's end.
// Then, in turn, the notifier's close and the telemetry flush.
func serveWorstShutdown(t *testing.T, where string, env map[string]string, dests int) (time.Duration, bool) {
	t.Helper()
	consumerPart, ok := worstShutdown(t, where, env)
	if !ok {
		return 0, false
	}
	consumerPart -= telemetryFlush // counted once, at the end
	durations := map[string]time.Duration{
		"PRODUCER_WRITE_TIMEOUT": producer.DefaultConfig().WriteTimeout,
		"NOTIFY_CLOSE_TIMEOUT":   notify.DefaultCloseTimeout,
	}
	for name := range durations {
		if v, ok := env[name]; ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Errorf("%s: %s %q: %v", where, name, v, err)
				return 0, false
			}
			durations[name] = d
		}
	}
	runPart := segmentlease.DefaultTimeout + runstore.DefaultTimeout + runstore.DefaultTimeout +
		durations["PRODUCER_WRITE_TIMEOUT"] + time.Duration(dests)*runstore.DefaultTimeout + schedule.DefaultTimeout
	return max(consumerPart, httpserver.ShutdownTimeout, runPart) + durations["NOTIFY_CLOSE_TIMEOUT"] + telemetryFlush, true
}

// maxDestinations is the most destinations a mapping of the files has (1
// at least: a mapping added later has one).
func maxDestinations(t *testing.T, files map[string][]byte) int {
	t.Helper()
	n := 1
	for name, data := range files {
		c, err := catalog.Decode(name, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Mappings {
			n = max(n, len(m.Destinations))
		}
	}
	return n
}

// labelSelector is a selector's matchLabels (a Deployment's, a PDB's).
type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// selects tells whether sel picks pods labelled labels: every label of
// the selector, and at least one.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type serveDeployment struct {
	obj    *object
	pod    *podSpec
	c      container
	env    map[string]string
	labels map[string]string
}

// findServe is the Deployment running serve, its container and env.
func findServe(t *testing.T, m manifests) serveDeployment {
	t.Helper()
	for _, o := range m.objects {
		p := o.pod()
		if p == nil || o.Kind != "Deployment" {
			continue
		}
		for _, c := range p.Containers {
			if path, _ := subcommand(c.Args); c.Image == image && len(path) == 1 && path[0] == "serve" {
				return serveDeployment{obj: o, pod: p, c: c, env: m.env(c), labels: o.Spec.Template.Metadata.Labels}
			}
		}
	}
	t.Fatal("no Deployment runs serve")
	return serveDeployment{}
}

// TestServeDisruptionBudget: one PodDisruptionBudget selects serve's pods,
// and none of another workload's, and lets a drain evict one at a time.
func TestServeDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	s := findServe(t, m)
	var found int
	for _, o := range m.objects {
		if o.Kind != "PodDisruptionBudget" {
			continue
		}
		var pdb struct {
			APIVersion string `yaml:"apiVersion"`
			Spec       struct {
				MinAvailable   *string       `yaml:"minAvailable"`
				MaxUnavailable *string       `yaml:"maxUnavailable"`
				Selector       labelSelector `yaml:"selector"`
			} `yaml:"spec"`
		}
		if err := o.raw.Decode(&pdb); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		if pdb.APIVersion != "policy/v1" {
			t.Errorf("%s: apiVersion %q, want policy/v1", o, pdb.APIVersion)
		}
		sel := pdb.Spec.Selector.MatchLabels
		if !selects(sel, s.labels) {
			t.Errorf("%s: selector %v does not select serve's pods (labels %v)", o, sel, s.labels)
			continue
		}
		if !selects(s.obj.deploymentSelector(t), s.labels) {
			t.Errorf("%s: the Deployment's selector does not select its own pods", s.obj)
		}
		for _, other := range m.objects {
			if p := other.pod(); p != nil && other != s.obj && selects(sel, podLabels(other)) {
				t.Errorf("%s: selector %v also selects the pods of %s", o, sel, other)
			}
		}
		found++
		// Some eviction must be allowed, or a node drain waits for ever.
		switch spec := pdb.Spec; {
		case (spec.MinAvailable == nil) == (spec.MaxUnavailable == nil):
			t.Errorf("%s: want exactly one of minAvailable and maxUnavailable", o)
		case spec.MaxUnavailable != nil:
			if n, err := strconv.Atoi(*spec.MaxUnavailable); err != nil || n < 1 || n >= s.obj.Spec.Replicas {
				t.Errorf("%s: maxUnavailable %q, want from 1 to %d of the %d replicas (a drain must evict one, the others keep working)",
					o, *spec.MaxUnavailable, s.obj.Spec.Replicas-1, s.obj.Spec.Replicas)
			}
		default:
			if n, err := strconv.Atoi(*spec.MinAvailable); err != nil || n < 1 || n >= s.obj.Spec.Replicas {
				t.Errorf("%s: minAvailable %q, want from 1 to %d of the %d replicas", o, *spec.MinAvailable, s.obj.Spec.Replicas-1, s.obj.Spec.Replicas)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d PodDisruptionBudgets select serve's pods, want 1", found)
	}
}

// deploymentSelector is a Deployment's spec.selector.matchLabels.
func (o *object) deploymentSelector(t *testing.T) map[string]string {
	t.Helper()
	var d struct {
		Spec struct {
			Selector labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	if err := o.raw.Decode(&d); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return d.Spec.Selector.MatchLabels
}

// podLabels is the labels of a workload's pods.
func podLabels(o *object) map[string]string {
	if o.Kind == "CronJob" {
		return o.Spec.JobTemplate.Spec.Template.Metadata.Labels
	}
	return o.Spec.Template.Metadata.Labels
}

// TestServeService: a Service selects serve's pods and sends its port to
// the one HTTP_ADDR opens, where the admin API, the console and /metrics
// are.
func TestServeService(t *testing.T) {
	m := loadManifests(t)
	s := findServe(t, m)
	_, addrPort, err := net.SplitHostPort(s.env["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("%s: HTTP_ADDR %q: %v", s.obj, s.env["HTTP_ADDR"], err)
	}
	var found int
	for _, o := range m.objects {
		if o.Kind != "Service" {
			continue
		}
		var svc struct {
			Spec struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []struct {
					Name       string `yaml:"name"`
					Port       int    `yaml:"port"`
					TargetPort string `yaml:"targetPort"`
				} `yaml:"ports"`
			} `yaml:"spec"`
		}
		if err := o.raw.Decode(&svc); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		if !selects(svc.Spec.Selector, s.labels) {
			continue
		}
		found++
		ok := slices.ContainsFunc(svc.Spec.Ports, func(p struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		}) bool {
			if p.TargetPort == addrPort {
				return true
			}
			i := slices.IndexFunc(s.c.Ports, func(cp port) bool { return cp.Name == p.TargetPort })
			return i >= 0 && strconv.Itoa(s.c.Ports[i].ContainerPort) == addrPort
		})
		if !ok {
			t.Errorf("%s: no port targets HTTP_ADDR's %s (ports %+v)", o, addrPort, svc.Spec.Ports)
		}
	}
	if found != 1 {
		t.Errorf("%d Services select serve's pods, want 1", found)
	}
}

// TestServeProbesAreServed: the probes' paths are served by the server
// serve runs on HTTP_ADDR (internal/httpserver), liveness and readiness
// apart; a path it does not serve would answer 404 here.
func TestServeProbesAreServed(t *testing.T) {
	s := findServe(t, loadManifests(t))
	live, ready := s.c.LivenessProbe, s.c.ReadinessProbe
	if live == nil || ready == nil {
		t.Fatalf("%s: serve needs both probes", s.obj)
	}
	if live.HTTPGet.Path == ready.HTTPGet.Path {
		t.Errorf("%s: liveness and readiness both probe %s: a Redis outage must make a replica unready, not restart it", s.obj, live.HTTPGet.Path)
	}
	ctx, cancel := context.WithCancel(t.Context())
	srv := httpserver.New("127.0.0.1:0", slog.New(slog.DiscardHandler))
	srv.Ready("starting", func(context.Context) error { return fmt.Errorf("not yet") })
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	<-srv.Listening()
	get := func(path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	// While a readiness check fails: liveness 200, readiness 503.
	if code := get(live.HTTPGet.Path); code != http.StatusOK {
		t.Errorf("liveness probe %s: %d, want 200 while only readiness fails", live.HTTPGet.Path, code)
	}
	if code := get(ready.HTTPGet.Path); code != http.StatusServiceUnavailable {
		t.Errorf("readiness probe %s: %d, want 503 while a readiness check fails", ready.HTTPGet.Path, code)
	}
	if code := get("/nonexistent-probe"); code != http.StatusNotFound {
		t.Errorf("an unserved path answered %d: the check above could not fail", code)
	}
}

// TestServeResources: requests say what the scheduler reserves, the
// memory limit is above the request, and the grace period covers serve's
// worst shutdown.
func TestServeResources(t *testing.T) {
	m := loadManifests(t)
	s := findServe(t, m)
	req, lim := s.c.Resources.Requests, s.c.Resources.Limits
	for _, r := range []string{"cpu", "memory"} {
		if req[r] == "" {
			t.Errorf("%s: no %s request", s.obj, r)
		}
	}
	reqMem, err1 := bytesOf(req["memory"])
	limMem, err2 := bytesOf(lim["memory"])
	if err1 != nil || err2 != nil || limMem < reqMem {
		t.Errorf("%s: memory request %q, limit %q: want a limit at or above the request (%v, %v)", s.obj, req["memory"], lim["memory"], err1, err2)
	}
	// The sort's memory budget of one run fits the limit with room for
	// the rest of the process.
	if limMem < 2*producer.DefaultConfig().SortChunkBytes {
		t.Errorf("%s: memory limit %q, want at least twice the snapshot sort's budget (%d bytes)", s.obj, lim["memory"], producer.DefaultConfig().SortChunkBytes)
	}
}

// bytesOf parses a Kubernetes memory quantity of the forms used here:
// 256Mi, 1Gi, 500M, 1024.
func bytesOf(q string) (int64, error) {
	units := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
	for _, u := range slices.Sorted(maps.Keys(units)) {
		if n, ok := strings.CutSuffix(q, u); ok && len(u) == 2 {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * units[u], err
		}
	}
	for u, f := range units {
		if n, ok := strings.CutSuffix(q, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * f, err
		}
	}
	return strconv.ParseInt(q, 10, 64)
}

func TestBytesOf(t *testing.T) {
	for q, want := range map[string]int64{"256Mi": 256 << 20, "1Gi": 1 << 30, "500M": 500e6, "1024": 1024} {
		if got, err := bytesOf(q); err != nil || got != want {
			t.Errorf("bytesOf(%q) = %d, %v; want %d", q, got, err, want)
		}
	}
	if _, err := bytesOf("lots"); err == nil {
		t.Error("bytesOf(lots) = nil error")
	}
}
