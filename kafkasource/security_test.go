package kafkasource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/oauth2"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// selfSigned returns a server certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TLS with a private CA and SASL/PLAIN reach a broker that requires both,
// and the source consumes through them.
func TestTLSAndSASLPlain(t *testing.T) {
	cert, caPEM := selfSigned(t)
	const topic = "srv.db.secure"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "cache", "s3cret"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o600))

	sec := Security{TLS: true, CACertFile: caFile, SASL: SASLPlain, User: "cache", Password: "s3cret"}
	opts, err := sec.Opts(context.Background())
	require.NoError(t, err)
	prod, err := kgo.NewClient(append(opts, kgo.SeedBrokers(c.ListenAddrs()...))...)
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	require.NoError(t, prod.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(`{}`)}).FirstErr())

	proc := newScripted(func(pipeline.Message) pipeline.Verdict { return pipeline.Ack })
	startSource(t, Config{Brokers: c.ListenAddrs(), Topics: []string{topic}, Group: "g", Opts: opts}, proc)
	require.Eventually(t, func() bool { return proc.isFinished(id(topic, 0, 0)) }, waitFor, 5*time.Millisecond)

	// The wrong password is refused.
	bad, err := Security{TLS: true, CACertFile: caFile, SASL: SASLPlain, User: "cache", Password: "nope"}.Opts(context.Background())
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(bad, kgo.SeedBrokers(c.ListenAddrs()...))...)
	require.NoError(t, err)
	defer cl.Close()
	assert.Error(t, cl.Ping(context.Background()))
}

func TestSecurityErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Security{SASL: "scram"}.Opts(ctx)
	assert.ErrorContains(t, err, "KAFKA_SASL:")
	_, err = Security{SASL: SASLPlain}.Opts(ctx)
	assert.ErrorContains(t, err, "KAFKA_USER:")
	_, err = Security{TLS: true, CACertFile: filepath.Join(t.TempDir(), "missing.pem")}.Opts(ctx)
	assert.ErrorContains(t, err, "kafka CA certificate")
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	_, err = Security{TLS: true, CACertFile: notPEM}.Opts(ctx)
	assert.ErrorContains(t, err, "no PEM certificate")
	opts, err := Security{}.Opts(ctx)
	require.NoError(t, err)
	assert.Empty(t, opts)
}

func TestManagedKafkaToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := ManagedKafkaToken("ya29.secret-token", now.Add(time.Hour), "worker@p.iam.gserviceaccount.com", now)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err, "part %q is not unpadded base64url", s)
		return b
	}
	var hdr map[string]string
	require.NoError(t, json.Unmarshal(dec(parts[0]), &hdr))
	assert.Equal(t, map[string]string{"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}, hdr)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(dec(parts[1]), &claims))
	assert.Equal(t, map[string]any{"exp": 1_700_003_600.0, "iat": 1_700_000_000.0, "scope": "kafka",
		"sub": "worker@p.iam.gserviceaccount.com"}, claims)
	assert.Equal(t, "ya29.secret-token", string(dec(parts[2])))
}

// countingSource hands out access tokens and counts how often it was asked.
type countingSource struct {
	n      int
	expiry time.Time
}

func (c *countingSource) Token() (*oauth2.Token, error) {
	c.n++
	return &oauth2.Token{AccessToken: "at" + string(rune('0'+c.n)), Expiry: c.expiry}, nil
}

// The oauthbearer mechanism sends the Managed Kafka token as the bearer, and
// tokens are reused until a minute before they expire.
func TestOAuthBearerSendsGoogleToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := now
	src := &countingSource{expiry: now.Add(10 * time.Minute)}
	gt := NewGoogleTokens(src, "sa@p.iam.gserviceaccount.com", func() time.Time { return clock })
	mech, err := Security{TLS: true, SASL: SASLOAuthBearer, Token: gt.Token}.mechanism(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "OAUTHBEARER", mech.Name())
	_, first, err := mech.Authenticate(context.Background(), "broker:9092")
	require.NoError(t, err)
	t1 := ManagedKafkaToken("at1", src.expiry, "sa@p.iam.gserviceaccount.com", now)
	// RFC 7628 client first message: gs2 header, then auth=Bearer <token>.
	assert.Equal(t, "n,,\x01auth=Bearer "+t1+"\x01\x01", string(first))
	clock = now.Add(8 * time.Minute)
	t2, _ := gt.Token(context.Background())
	assert.Equal(t, t1, t2, "token refetched before it was due")
	assert.Equal(t, 1, src.n)
}
