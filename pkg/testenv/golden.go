package testenv

import (
	"bytes"
	"os"
	"testing"
)

// Golden compares got with the golden file at path, after rewriting the
// file with got when update is set (each package's -update flag): the one
// way every wire format and report text of the project is pinned.
func Golden(t testing.TB, update bool, path string, got []byte) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it after checking):\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}
