package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func builtin(t testing.TB) *Parsers {
	t.Helper()
	ps, err := NewParsers(Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestParsePartners applies each partner's declaration to its request
// body in testdata/requests (file name: integration[-case].json) and
// compares the batch with its golden file.
func TestParsePartners(t *testing.T) {
	ps := builtin(t)
	files, err := filepath.Glob("testdata/requests/*.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		integration, _, _ := strings.Cut(name, "-")
		seen[integration] = true
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ps.Parse(integration, body)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := json.MarshalIndent(b, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, *update, filepath.Join("testdata", "golden", name+".json"), append(got, '\n'))
		})
	}
	for _, k := range ps.Integrations() {
		if !seen[k] {
			t.Errorf("integration %s has no request body in testdata/requests", k)
		}
	}
}

// TestParseActions pins the membership rule of every style, the
// Tealium and Zeotap matcher cases above all: their manifests' matchers
// also match the remove action, which must remove.
func TestParseActions(t *testing.T) {
	ps := builtin(t)
	for _, tc := range []struct {
		file          string
		adds, removes []string
	}{
		{"amplitude", []string{"user-1234", "4242"}, []string{"user-5678"}},
		{"segment-audience", []string{"acct-2"}, []string{"acct-1"}}, // last occurrence in the array wins
		{"rudderstack", []string{"u1"}, []string{"u3", "u2"}},        // between the arrays, remove wins (keys in first-seen order)
		{"hightouch-add", []string{"u1", "u2"}, nil},
		{"hightouch-remove", nil, []string{"u2"}},
		{"tealium-add", []string{"m1", "m2"}, nil},
		{"tealium-remove", nil, []string{"m2"}},
		{"zeotap-add", []string{"z1", "z2"}, nil},
		{"zeotap-members", []string{"z3"}, nil},
		{"zeotap-remove", nil, []string{"z1"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			file := tc.file
			if file == "segment-audience" {
				file = "segment"
			}
			body, err := os.ReadFile(filepath.Join("testdata", "requests", file+".json"))
			if err != nil {
				t.Fatal(err)
			}
			integration, _, _ := strings.Cut(file, "-")
			b, err := ps.Parse(integration, body)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Adds, tc.adds) || !slices.Equal(b.Removes, tc.removes) {
				t.Errorf("adds %q removes %q, want adds %q removes %q", b.Adds, b.Removes, tc.adds, tc.removes)
			}
		})
	}
}

// TestLiteralMatcherWouldAdd shows why the correction exists: the
// manifest's matcher alone adds on remove_member.
func TestLiteralMatcherWouldAdd(t *testing.T) {
	var decl Declaration
	for _, d := range Builtin() {
		if d.Integration == "tealium" {
			decl = d
		}
	}
	decl.RemoveMatcher = ""
	ps, err := NewParsers(decl)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("testdata/requests/tealium-remove.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ps.Parse("tealium", body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Adds) != 1 || len(b.Removes) != 0 {
		t.Fatalf("literal matcher: adds %q removes %q, want the (wrong) add the correction prevents", b.Adds, b.Removes)
	}
}

func TestParseExclusions(t *testing.T) {
	body, err := os.ReadFile("testdata/requests/amplitude.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := builtin(t).Parse("amplitude", body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range b.Exclusions {
		got = append(got, e.Reason)
	}
	want := []string{ReasonEmptyID, ReasonMissingID, ReasonBadMember}
	if !slices.Equal(got, want) {
		t.Errorf("exclusion reasons %q, want %q", got, want)
	}
	if b.Exclusions[0].Row != 3 || b.Exclusions[2].Value != "user-9" {
		t.Errorf("exclusions %+v: want rows from 1 and the member's id as value", b.Exclusions)
	}
}

func TestParseWebhook(t *testing.T) {
	for _, name := range []string{"webhook-enter", "webhook-exit"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseAmplitudeWebhook("production", body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(b, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, *update, filepath.Join("testdata", "golden", name+".json"), append(got, '\n'))
		})
	}
}

// TestParseBadInput: every body a partner (or an attacker) can send is
// refused with a FieldError naming the field, never a panic.
func TestParseBadInput(t *testing.T) {
	ps := builtin(t)
	deep := strings.Repeat("[", 200000) + strings.Repeat("]", 200000)
	deepObj := `{"environmentId":"e","cohortId":"c","listData":{"add":` + strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000) + `}}`
	for _, tc := range []struct {
		name, integration, body, field string
	}{
		{"zero bytes", "amplitude", "", "body"},
		{"blanks only", "amplitude", " \n\t", "body"},
		{"not JSON", "amplitude", "environmentId=1", "body"},
		{"two documents", "amplitude", `{} {}`, "body"},
		{"invalid UTF-8", "amplitude", "{\"environmentId\": \"e\xff\"}", "body"},
		{"deep array nesting", "amplitude", deep, "body"},
		{"deep object nesting", "rudderstack", deepObj, "body"},
		{"body is an array", "amplitude", `[]`, "/environmentId"},
		{"environment missing", "amplitude", `{"batch": []}`, "/environmentId"},
		{"environment null", "amplitude", `{"environmentId": null}`, "/environmentId"},
		{"environment an object", "amplitude", `{"environmentId": {}}`, "/environmentId"},
		{"environment a bool", "census", `{"environment_id": true}`, "/environment_id"},
		{"environment empty", "amplitude", `{"environmentId": ""}`, "/environmentId"},
		{"batch an object", "amplitude", `{"environmentId": "e", "batch": {}}`, "/batch"},
		{"batch a string", "segment", `{"environmentId": "e", "batch": "x"}`, "/batch"},
		{"cohort id missing", "amplitude", `{"environmentId": "e", "batch": [{"userId": "u", "value": true}]}`, "/batch/0/cohortId"},
		{"cohort id an array", "rudderstack", `{"environmentId": "e", "cohortId": [], "listData": {"add": [{"id": "u"}]}}`, "/cohortId"},
		{"cohort id with a control character", "rudderstack", "{\"environmentId\": \"e\", \"cohortId\": \"a\\u001fb\", \"listData\": {\"add\": [{\"id\": \"u\"}]}}", "/cohortId"},
		{"context kind a number", "segment", `{"environmentId": "e", "contextKind": 3}`, "/contextKind"},
		{"context kind kind", "segment", `{"environmentId": "e", "contextKind": "kind"}`, "/contextKind"},
		{"context kind with a space", "fulcrum", `{"environmentId": "e", "contextKind": "a b"}`, "/contextKind"},
		{"add array a number", "fulcrum", `{"environmentId": "e", "cohortId": "c", "included": {"add": 1}}`, "/included/add"},
		{"remove array an object", "heap", `{"parameters": {"environment_id": "e"}, "heap": {"data": {"segment": {"id": "s"}, "remove": {}}}}`, "/heap/data/remove"},
		{"action missing", "hightouch", `{"environmentId": "e", "cohortId": "c", "members": [{"integration_distinct_id": "u"}]}`, "/action"},
		{"action an object", "tealium", `{"action": {}, "parameters": {"tealium_project_id": "e", "tealium_cohort_id": "c", "members": []}}`, "/action"},
		{"members an object", "zeotap", `{"action": "members", "parameters": {"integration_project_id": "e", "integration_cohort_id": "c", "members": {}}}`, "/parameters/members"},
		{"environment too long", "amplitude", `{"environmentId": "` + strings.Repeat("e", 1025) + `"}`, "environment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ps.Parse(tc.integration, []byte(tc.body))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field %q (%v), want %q", fe.Field, err, tc.field)
			}
		})
	}
	if _, err := ps.Parse("nosuch", []byte(`{}`)); !errors.Is(err, ErrUnknownIntegration) {
		t.Errorf("unknown integration: %v", err)
	}
}

// TestParseWrongMemberTypes: a member of any JSON type at the member id
// pointer is excluded with a reason, the rest of the batch applies.
func TestParseWrongMemberTypes(t *testing.T) {
	ps := builtin(t)
	for _, v := range []string{`null`, `true`, `[]`, `{}`, `""`, `"` + strings.Repeat("k", 1025) + `"`} {
		body := `{"environmentId": "e", "cohortId": "c", "listData": {"add": [{"id": "ok"}, {"id": ` + v + `}, 7, "s", null]}}`
		b, err := ps.Parse("rudderstack", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if !slices.Equal(b.Adds, []string{"ok"}) || len(b.Exclusions) != 4 {
			t.Errorf("%s: adds %q exclusions %+v", v, b.Adds, b.Exclusions)
		}
	}
}

func TestParseEmptyBatch(t *testing.T) {
	b, err := builtin(t).Parse("amplitude", []byte(`{"environmentId": "e", "batch": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Members() != 0 || b.CohortID != "" {
		t.Errorf("empty batch: %+v", b)
	}
}

func TestDeclarationsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Declaration
		want string
	}{
		{"no integration", Declaration{}, "no Integration"},
		{"bad pointer", Declaration{Integration: "x", EnvironmentPath: "env", CohortIDPath: "/c", MemberIDPath: "/id", Membership: AddRemoveArrays, AddArrayPath: "/a", RemoveArrayPath: "/r"}, "does not start with /"},
		{"bad escape", Declaration{Integration: "x", EnvironmentPath: "/e~2", CohortIDPath: "/c", MemberIDPath: "/id", Membership: AddRemoveArrays, AddArrayPath: "/a", RemoveArrayPath: "/r"}, "~ must be followed"},
		{"bad matcher", Declaration{Integration: "x", EnvironmentPath: "/e", CohortIDPath: "/c", MemberIDPath: "/id", Membership: ArrayInclusion, MemberArrayPath: "/m", ActionPath: "/a", AddMatcher: "("}, "AddMatcher"},
		{"no rule", Declaration{Integration: "x", EnvironmentPath: "/e", CohortIDPath: "/c", MemberIDPath: "/id"}, "Membership"},
		{"missing arrays", Declaration{Integration: "x", EnvironmentPath: "/e", CohortIDPath: "/c", MemberIDPath: "/id", Membership: BooleanMembership}, "MemberArrayPath is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewParsers(tc.d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	d := Builtin()[0]
	if _, err := NewParsers(d, d); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestPointer(t *testing.T) {
	doc, err := decode([]byte(`{"a/b": {"m~n": [10, 20]}, "": 1, "arr": [0]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    string
		want string
		ok   bool
	}{
		{"/a~1b/m~0n/1", "20", true},
		{"/", "1", true},
		{"/a~1b/m~0n/01", "", false},
		{"/a~1b/m~0n/2", "", false},
		{"/a~1b/m~0n/-1", "", false},
		{"/arr/0/x", "", false},
	} {
		v, ok := mustPointer(tc.p).lookup(doc)
		s, _ := scalar(v)
		if ok != tc.ok || s != tc.want {
			t.Errorf("%s: %v %v, want %q %v", tc.p, v, ok, tc.want, tc.ok)
		}
		if ok && mustPointer(tc.p).String() != tc.p {
			t.Errorf("%s: String() %s", tc.p, mustPointer(tc.p).String())
		}
	}
	if !bytes.Equal([]byte(printable(strings.Repeat("é", 100))), []byte(strings.Repeat("é", 64)+"…")) {
		t.Errorf("printable does not cut on a rune boundary")
	}
}
