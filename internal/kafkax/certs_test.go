package kafkax

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// testCA is testenv's CA with a directory of its own for other files.
type testCA struct {
	*testenv.CA
	dir string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	return &testCA{CA: testenv.NewCA(t), dir: t.TempDir()}
}

func (ca *testCA) issue(t *testing.T, cn, dnsName string, client bool) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, cn, dnsName, client)
}

func (ca *testCA) serverTLS(t *testing.T, dnsName string, mutual bool) *tls.Config {
	t.Helper()
	return ca.ServerTLS(t, dnsName, mutual)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
