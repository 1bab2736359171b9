package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantTopic string
		wantWait  time.Duration
		wantList  string
		wantErr   string
	}{
		{name: "defaults", wantTopic: "t", wantWait: time.Second},
		{name: "env twin fills an unset flag", env: map[string]string{"CS_TOPIC": "from-env", "CS_KAFKA_BROKERS": "a:1, b:2,,"}, wantTopic: "from-env", wantWait: time.Second, wantList: "a:1,b:2"},
		{name: "flag wins over env", args: []string{"--topic", "from-flag"}, env: map[string]string{"CS_TOPIC": "from-env"}, wantTopic: "from-flag", wantWait: time.Second},
		{name: "bad env value names the variable", env: map[string]string{"CS_WAIT": "soon"}, wantErr: `environment variable CS_WAIT="soon"`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined: -nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			topic := fs.String("topic", "t", "topic")
			wait := fs.Duration("wait", time.Second, "wait")
			var list StringList
			fs.Var(&list, "kafka-brokers", "brokers")
			err := Parse(fs, tc.args, "CS_", func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *topic != tc.wantTopic || *wait != tc.wantWait || list.String() != tc.wantList {
				t.Errorf("got topic=%q wait=%v list=%q", *topic, *wait, list.String())
			}
			if u := fs.Lookup("kafka-brokers").Usage; u != "brokers (env CS_KAFKA_BROKERS)" {
				t.Errorf("usage %q does not name the env twin", u)
			}
		})
	}
}

func TestStringMap(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{in: "prod=ld-prod, staging=ld-stg", want: "ld-prod|ld-stg"},
		{in: "", want: "|"},
		{in: "prod", wantErr: `"prod" is not key=value`},
		{in: "prod=", wantErr: `"prod=" is not key=value`},
		{in: "a=1,a=2", wantErr: `key "a" given twice`},
	} {
		var m StringMap
		err := m.Set(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || m["prod"]+"|"+m["staging"] != tc.want {
			t.Errorf("%q: got %v %v", tc.in, m, err)
		}
	}
}
