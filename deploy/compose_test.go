package deploy

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// composePath is docker-compose.yml, from this package's directory.
const composePath = "../docker-compose.yml"

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

// composeService declares every key the file uses, and the file is decoded
// strictly: a misspelt key ("depend_on") would be ignored by nothing here.
type composeService struct {
	Image       string                       `yaml:"image"`
	Build       map[string]string            `yaml:"build"`
	Entrypoint  []string                     `yaml:"entrypoint"`
	Command     []string                     `yaml:"command"`
	Environment map[string]string            `yaml:"environment"`
	Volumes     []string                     `yaml:"volumes"`
	Ports       []string                     `yaml:"ports"`
	Expose      []string                     `yaml:"expose"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Restart         string         `yaml:"restart"`
	StopGracePeriod string         `yaml:"stop_grace_period"`
	Profiles        []string       `yaml:"profiles"`
	Healthcheck     map[string]any `yaml:"healthcheck"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return f
}

// cohortsync is whether the service runs the image of deploy/Dockerfile.
func (s composeService) cohortsync() bool { return s.Build["dockerfile"] == "deploy/Dockerfile" }

// args is the command line after the binary: the entry point's rest (when
// the service replaces it) and the command.
func (s composeService) args(t *testing.T, name string) []string {
	t.Helper()
	if len(s.Entrypoint) == 0 {
		return s.Command
	}
	if s.Entrypoint[0] != binary {
		t.Errorf("service %s: entrypoint %q, want %s first", name, s.Entrypoint, binary)
	}
	return append(slices.Clone(s.Entrypoint[1:]), s.Command...)
}

// hostPath is the file of the repository a path inside the service's
// container is, through its bind mounts ("./dir:/target[:ro]").
func (s composeService) hostPath(p string) (string, bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			continue
		}
		if rel, ok := strings.CutPrefix(p, parts[1]); ok && (rel == "" || rel[0] == '/') {
			return filepath.Join("..", parts[0], rel), true
		}
	}
	return "", false
}

// sameFile tells whether paths a and b, relative to this directory, are one.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ia, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(ia, ib)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestComposeCommands(t *testing.T) {
	f := loadCompose(t)
	var checked int
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		for _, dep := range sortedKeys(s.DependsOn) {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("service %s: depends on %s, which is not a service", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, declared := f.Volumes[src]; !strings.HasPrefix(src, "./") && !declared {
				t.Errorf("service %s: volume %s is not declared under volumes", name, src)
			}
		}
		if !s.cohortsync() {
			continue
		}
		checked++
		where := composePath + ": service " + name
		args := s.args(t, name)
		command{where: where, args: args, env: sortedKeys(s.Environment)}.check(t)
		if path, _ := subcommand(args); len(path) == 1 && (path[0] == "serve" || path[0] == "consume") {
			// Compose kills a container 10s after SIGTERM unless told
			// otherwise: less than the consumer's worst shutdown.
			worst, ok := worstShutdown(t, where, s.Environment)
			if path[0] == "serve" {
				worst, ok = serveWorstShutdown(t, where, s.Environment, exampleDestinations(t))
			}
			if d, err := time.ParseDuration(s.StopGracePeriod); ok && (err != nil || d < worst) {
				t.Errorf("%s: stop_grace_period %q, want at least %v (the worst shutdown)", where, s.StopGracePeriod, worst)
			}
		}
	}
	if checked < 4 { // mappings, serve, consumer, producer
		t.Errorf("%s: %d services run cohortsync, want at least 4", composePath, checked)
	}
}

func TestComposeServe(t *testing.T) {
	f := loadCompose(t)
	serve, ok := f.Services["serve"]
	if !ok {
		t.Fatal("no service serve")
	}
	apply, ok := f.Services["mappings"]
	if !ok {
		t.Fatal("no service mappings")
	}
	if got := serve.args(t, "serve"); len(got) == 0 || got[0] != "serve" || flagValue(got, "--http-addr") == "" {
		t.Errorf("serve: command %q, want serve with --http-addr", got)
	}
	if serve.Deploy.Replicas != 3 {
		t.Errorf("serve: %d replicas, want 3", serve.Deploy.Replicas)
	}
	checkPublished(t, serve, flagValue(serve.args(t, "serve"), "--http-addr"))
	if len(serve.Profiles) != 0 || len(apply.Profiles) != 0 {
		t.Errorf("serve and mappings must start with a plain \"up\": profiles %q and %q", serve.Profiles, apply.Profiles)
	}
	for dep, cond := range map[string]string{"topics": "service_completed_successfully", "mappings": "service_completed_successfully", "redis": "service_healthy"} {
		if got := serve.DependsOn[dep].Condition; got != cond {
			t.Errorf("serve: depends on %s with condition %q, want %s", dep, got, cond)
		}
	}
	if got := apply.DependsOn["redis"].Condition; got != "service_healthy" {
		t.Errorf("mappings: depends on redis with condition %q, want service_healthy", got)
	}
	if serve.Environment["REDIS_URL"] == "" || serve.Environment["REDIS_URL"] != apply.Environment["REDIS_URL"] {
		t.Errorf("serve reads its catalog from REDIS_URL %q, mappings stores it in %q: want one control Redis",
			serve.Environment["REDIS_URL"], apply.Environment["REDIS_URL"])
	}
	// The legacy consumer joins the same group: it must not start with serve.
	if c, ok := f.Services["consumer"]; ok && len(c.Profiles) == 0 {
		t.Error("consumer: no profile, so a plain \"up\" runs it beside serve in one consumer group")
	}

	// The file mappings applies is the example, mounted from the repository.
	file := flagValue(apply.args(t, "mappings"), "-f", "--file")
	host, ok := apply.hostPath(file)
	if !ok {
		t.Fatalf("mappings: %s is not mounted from the repository (volumes %q)", file, apply.Volumes)
	}
	if !sameFile(t, host, examplePath) {
		t.Errorf("mappings applies %s, want %s", host, examplePath)
	}
	c, err := catalog.Load(host)
	if err != nil {
		t.Fatal(err)
	}
	// Every replica may run every mapping: each CSV must be mounted in
	// serve, and each destination's Redis be a service of the stack.
	for _, m := range c.Mappings {
		if m.Source.Kind != catalog.SourceCSV {
			continue
		}
		p, ok := serve.hostPath(m.Source.Location)
		if !ok {
			t.Errorf("mapping %s: %s is not mounted in serve (volumes %q)", m.Name, m.Source.Location, serve.Volumes)
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("mapping %s: %s is %s in the repository: %v", m.Name, m.Source.Location, p, err)
		}
	}
	for _, d := range c.Destinations {
		u, err := url.Parse(d.Redis.URL)
		if err != nil {
			t.Errorf("destination %s: %v", d.Name, err)
			continue
		}
		if _, ok := f.Services[u.Hostname()]; !ok {
			t.Errorf("destination %s: Redis %s is not a service of the stack", d.Name, u.Host)
		}
	}
}

// exampleDestinations is the most destinations a mapping of the compose
// stack's file has.
func exampleDestinations(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return maxDestinations(t, map[string][]byte{examplePath: b})
}

// checkPublished checks that the HTTP port of every replica of s (the
// admin API and console) is published on the host: a range of host ports,
// one a replica, onto the port of httpAddr.
func checkPublished(t *testing.T, s composeService, httpAddr string) {
	t.Helper()
	_, want, err := net.SplitHostPort(httpAddr)
	if err != nil {
		t.Fatalf("serve: --http-addr %q: %v", httpAddr, err)
	}
	for _, p := range s.Ports {
		host, container, ok := strings.Cut(p, ":")
		if !ok || container != want {
			continue
		}
		lo, hi, isRange := strings.Cut(host, "-")
		if !isRange {
			hi = lo
		}
		first, err1 := strconv.Atoi(lo)
		last, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || last-first+1 < s.Deploy.Replicas {
			t.Errorf("serve: ports %q: want a host port range of at least %d ports (one a replica) onto %s", p, s.Deploy.Replicas, want)
		}
		return
	}
	t.Errorf("serve: no port publishes --http-addr's %s on the host (ports %q)", want, s.Ports)
}
