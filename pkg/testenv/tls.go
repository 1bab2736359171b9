package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// CA is a certificate authority made for one test, with its PEM file.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	// Pool trusts the CA; CAFile is its certificate as PEM.
	Pool   *x509.CertPool
	CAFile string
}

// NewCA returns a CA valid for an hour, its files in a directory removed
// when the test ends.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cohortsync test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{cert: cert, key: key, Pool: x509.NewCertPool(), dir: t.TempDir()}
	ca.Pool.AddCert(cert)
	ca.CAFile = writePEM(t, ca.dir, "ca.pem", "CERTIFICATE", der)
	return ca
}

// Issue returns the PEM files of a certificate for cn signed by ca, valid
// for the loopback addresses and dnsName, for a server or a client.
func (ca *CA) Issue(t testing.TB, cn, dnsName string, client bool) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{dnsName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, ca.dir, cn+".pem", "CERTIFICATE", der), writePEM(t, ca.dir, cn+"-key.pem", "PRIVATE KEY", kder)
}

// ServerTLS is the TLS configuration of a server with a certificate of ca
// for dnsName and the loopback addresses; with mutual it requires a client
// certificate signed by ca.
func (ca *CA) ServerTLS(t testing.TB, dnsName string, mutual bool) *tls.Config {
	t.Helper()
	certFile, keyFile := ca.Issue(t, "server-"+dnsName, dnsName, false)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if mutual {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool
	}
	return cfg
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Environment variables of the TLS services (scripts/services.sh).
const (
	// EnvTLSDir holds ca.pem, client.pem and client-key.pem: the CA of
	// the TLS services' certificates and a client certificate it signed.
	EnvTLSDir          = "COHORTSYNC_TEST_TLS_DIR"
	EnvRedisTLSURL     = "COHORTSYNC_TEST_REDIS_TLS_URL"
	EnvKafkaTLSBrokers = "COHORTSYNC_TEST_KAFKA_TLS_BROKERS"
)

// TLSFiles are what a client of a mutual-TLS service is given.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// servicesTLS returns the files of the real TLS services.
func servicesTLS(t testing.TB) TLSFiles {
	t.Helper()
	dir := lookup(t, EnvTLSDir)
	return TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem")}
}

// RedisTLS returns the rediss:// URL of a standalone Redis requiring
// mutual TLS, and the files its clients need: the real one when
// configured, else a miniredis serving TLS, closed when the test ends.
func RedisTLS(t testing.TB) (string, TLSFiles) {
	t.Helper()
	if v := lookup(t, EnvRedisTLSURL); v != "" {
		return v, servicesTLS(t)
	}
	m, files := miniredisTLS(t)
	return "rediss://" + m.Addr() + "/0", files
}

// KafkaTLS returns the brokers of a Kafka requiring mutual TLS, the files
// its clients need, and whether it is the real broker; else a kfake
// cluster serving TLS, closed when the test ends.
func KafkaTLS(t testing.TB) ([]string, TLSFiles, bool) {
	t.Helper()
	if v := lookup(t, EnvKafkaTLSBrokers); v != "" {
		return strings.Split(v, ","), servicesTLS(t), true
	}
	ca := NewCA(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.ServerTLS(t, "kfake.test", true)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cert, key := ca.Issue(t, "client", "client.test", true)
	return c.ListenAddrs(), TLSFiles{CAFile: ca.CAFile, CertFile: cert, KeyFile: key}, false
}
