package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/telemetry"
)

// image is the cohortsync image the manifests run.
const image = "ghcr.io/cohortsync/cohortsync:latest"

// object is the part of a Kubernetes object the checks read.
type object struct {
	file     string
	raw      yaml.Node // the whole document, for the kinds read in full (serve_test.go)
	Kind     string    `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas    int         `yaml:"replicas"`
		Template    podTemplate `yaml:"template"`
		JobTemplate struct {
			Spec struct {
				Template podTemplate `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec podSpec `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	InitContainers                []container `yaml:"initContainers"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []envVar `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports          []port `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type port struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// pod is the pod template of a workload, nil for other kinds.
func (o *object) pod() *podSpec {
	switch o.Kind {
	case "Deployment", "Job":
		return &o.Spec.Template.Spec
	case "CronJob":
		return &o.Spec.JobTemplate.Spec.Template.Spec
	}
	return nil
}

func (o *object) String() string { return o.file + ": " + o.Kind + " " + o.Metadata.Name }

// manifests is every object of deploy/k8s, with the ConfigMaps by name.
type manifests struct {
	objects    []*object
	configMaps map[string]*object
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/ (%v)", err)
	}
	m := manifests{configMaps: map[string]*object{}}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			o := &object{file: file}
			if err := dec.Decode(&o.raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if err := o.raw.Decode(o); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document without kind or name", file)
			}
			m.objects = append(m.objects, o)
			if o.Kind == "ConfigMap" {
				m.configMaps[o.Metadata.Name] = o
			}
		}
	}
	return m
}

// mountedFile is the ConfigMap and key a path inside c is, through its
// volume mounts.
func (p *podSpec) mountedFile(c container, file string) (configMap, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		rel, found := strings.CutPrefix(file, vm.MountPath+"/")
		if !found {
			continue
		}
		for _, v := range p.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name, rel, true
			}
		}
	}
	return "", "", false
}

// appliedCatalogs decodes every mappings file a "mappings apply" container
// applies from a ConfigMap, and returns the password variables of their
// destinations, which serve reads when connecting.
func appliedCatalogs(t *testing.T, m manifests) (passwordEnvs map[string]bool, files map[string][]byte) {
	t.Helper()
	passwordEnvs, files = map[string]bool{}, map[string][]byte{}
	for _, o := range m.objects {
		p := o.pod()
		if p == nil {
			continue
		}
		for _, c := range slices.Concat(p.InitContainers, p.Containers) {
			args := append(slices.Clone(c.Command[min(1, len(c.Command)):]), c.Args...)
			if path, rest := subcommand(args); c.Image != image || strings.Join(path, " ") != "mappings apply" {
				continue
			} else if file := flagValue(rest, "-f", "--file"); file != "" {
				cm, key, ok := p.mountedFile(c, file)
				if !ok || m.configMaps[cm] == nil || m.configMaps[cm].Data[key] == "" {
					t.Errorf("%s: container %s applies %s, which is no key of a mounted ConfigMap", o, c.Name, file)
					continue
				}
				data := []byte(m.configMaps[cm].Data[key])
				cat, err := catalog.Decode(cm+"/"+key, data)
				if err != nil {
					t.Errorf("%s: ConfigMap %s, %s: %v", o, cm, key, err)
					continue
				}
				files[cm+"/"+key] = data
				for _, d := range cat.Destinations {
					if d.Password.Env != "" {
						passwordEnvs[d.Password.Env] = true
					}
				}
			}
		}
	}
	return passwordEnvs, files
}

func TestManifestCommands(t *testing.T) {
	m := loadManifests(t)
	passwordEnvs, files := appliedCatalogs(t, m)
	if len(files) == 0 {
		t.Error("no manifest applies a mappings file")
	}
	// A ConfigMap shared through envFrom may hold variables of several
	// commands: each key must be read by one of the commands using it.
	readBy := map[string]map[string]bool{}
	var serves int
	for _, o := range m.objects {
		p := o.pod()
		if p == nil {
			continue
		}
		for _, c := range slices.Concat(p.InitContainers, p.Containers) {
			var fromMaps []string
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef == nil {
					continue
				}
				if m.configMaps[ef.ConfigMapRef.Name] == nil {
					t.Errorf("%s: container %s: envFrom ConfigMap %s is in no manifest", o, c.Name, ef.ConfigMapRef.Name)
				}
				fromMaps = append(fromMaps, ef.ConfigMapRef.Name)
			}
			if c.Image != image {
				continue
			}
			if len(c.Command) == 0 || c.Command[0] != binary {
				t.Errorf("%s: container %s: command %q, want %s first", o, c.Name, c.Command, binary)
				continue
			}
			cmd := command{where: o.String() + ", container " + c.Name, args: append(slices.Clone(c.Command[1:]), c.Args...), extraEnv: passwordEnvs}
			env := map[string]string{}
			for _, e := range c.Env {
				cmd.env = append(cmd.env, e.Name)
				env[e.Name] = e.Value
			}
			u := cmd.check(t)
			for _, name := range fromMaps {
				if readBy[name] == nil {
					readBy[name] = map[string]bool{}
				}
				for e := range u.envs {
					readBy[name][e] = true
				}
			}
			checkProbes(t, cmd.where, c, env["HTTP_ADDR"])
			if path, _ := subcommand(cmd.args); len(path) == 1 && (path[0] == "serve" || path[0] == "consume") {
				checkGrace(t, o, p, m.env(c), path[0] == "serve", maxDestinations(t, files))
			}
			if path, _ := subcommand(cmd.args); len(path) == 1 && path[0] == "serve" {
				serves++
				checkServe(t, o, p, c, env, passwordEnvs)
			}
		}
	}
	for name, keys := range readBy {
		for key := range m.configMaps[name].Data {
			if !keys[key] {
				t.Errorf("ConfigMap %s: no cohortsync command using it reads %s", name, key)
			}
		}
	}
	if serves != 1 {
		t.Errorf("%d containers run serve, want 1 (deploy/k8s/serve.yaml)", serves)
	}
}

// checkProbes checks that the probes ask the process's HTTP server, on the
// port HTTP_ADDR opens, for the paths it serves.
func checkProbes(t *testing.T, where string, c container, httpAddr string) {
	t.Helper()
	for _, pr := range []struct {
		probe *probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil {
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			t.Errorf("%s: probe of %s, want %s", where, pr.probe.HTTPGet.Path, pr.path)
		}
		_, addrPort, err := net.SplitHostPort(httpAddr)
		if err != nil {
			t.Errorf("%s: probes without an HTTP server: HTTP_ADDR %q: %v", where, httpAddr, err)
			continue
		}
		i := slices.IndexFunc(c.Ports, func(p port) bool { return p.Name == pr.probe.HTTPGet.Port })
		if i < 0 || addrPort != strconv.Itoa(c.Ports[i].ContainerPort) {
			t.Errorf("%s: probe of port %q, which is not HTTP_ADDR's %s", where, pr.probe.HTTPGet.Port, addrPort)
		}
	}
}

// telemetryFlush bounds the telemetry's flush at exit.
const telemetryFlush = telemetry.ShutdownTimeout

// graceMargin is what a pod's grace period may hold beyond the worst
// shutdown: more only delays a rollout past a hung process.
const graceMargin = 4 * time.Second

// checkGrace checks that a pod running the consumer (consume, serve) gets
// the worst case of its shutdown as its grace period (issue 11 item 5):
// the consumer returns within --shutdown-timeout plus a second whatever
// hangs, then the telemetry flush gets up to telemetry.ShutdownTimeout (the
// HTTP server's shutdown runs meanwhile). serve also ends the run its
// scheduler had in progress and closes its notifier: serveWorstShutdown,
// for mappings of up to dests destinations. A pod gets not much more: more
// only delays a rollout past a hung process.
func checkGrace(t *testing.T, o *object, p *podSpec, env map[string]string, serve bool, dests int) {
	t.Helper()
	worst, ok := worstShutdown(t, o.String(), env)
	if serve {
		worst, ok = serveWorstShutdown(t, o.String(), env, dests)
	}
	if !ok {
		return
	}
	if p.TerminationGracePeriodSeconds == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds; want %v, the worst shutdown (Kubernetes' default is 30s)", o, worst)
		return
	}
	grace := time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	if grace < worst || grace > worst+graceMargin {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want from %v (the worst shutdown) to %v", o, grace, worst, worst+graceMargin)
	}
}

// worstShutdown is how long a process running the consumer with env takes
// at worst to exit after SIGTERM: --shutdown-timeout plus a second, then the
// telemetry flush.
func worstShutdown(t *testing.T, where string, env map[string]string) (time.Duration, bool) {
	t.Helper()
	shutdown := consumer.DefaultShutdownTimeout
	if v, ok := env["CONSUMER_SHUTDOWN_TIMEOUT"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s: CONSUMER_SHUTDOWN_TIMEOUT %q: %v", where, v, err)
			return 0, false
		}
		shutdown = d
	}
	return shutdown + time.Second + telemetryFlush, true
}

// env is the environment c's variables and envFrom ConfigMaps give it.
func (m manifests) env(c container) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && m.configMaps[ef.ConfigMapRef.Name] != nil {
			maps.Copy(env, m.configMaps[ef.ConfigMapRef.Name].Data)
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// checkServe checks the serve Deployment: replicas, probes, the state
// directory on an emptyDir (a cache), the destinations' passwords.
func checkServe(t *testing.T, o *object, p *podSpec, c container, env map[string]string, passwordEnvs map[string]bool) {
	t.Helper()
	if o.Kind != "Deployment" || o.Spec.Replicas != 3 {
		t.Errorf("%s runs serve: want a Deployment of 3 replicas, not %d", o, o.Spec.Replicas)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s: serve without liveness and readiness probes", o)
	}
	stateDir := env["PRODUCER_STATE_DIR"]
	mounted := false
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) != path.Clean(stateDir) {
			continue
		}
		for _, v := range p.Volumes {
			mounted = mounted || (v.Name == vm.Name && v.EmptyDir != nil)
		}
	}
	if !mounted {
		t.Errorf("%s: PRODUCER_STATE_DIR %q is not an emptyDir mount (the root file system is read-only)", o, stateDir)
	}
	for e := range passwordEnvs {
		if !slices.ContainsFunc(c.Env, func(v envVar) bool { return v.Name == e }) {
			t.Errorf("%s: a destination's password is read from %s, which serve's container does not set", o, e)
		}
	}
}

// TestManifestMappingsApply applies each mappings file of the manifests,
// as their Job does.
func TestManifestMappingsApply(t *testing.T) {
	_, files := appliedCatalogs(t, loadManifests(t))
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "mappings.yaml")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			appliesTwice(t, file)
		})
	}
}
