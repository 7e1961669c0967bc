package kafkasource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// The SASL mechanisms Security.SASL accepts.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLOAuthBearer = "oauthbearer"
)

// Security says how the client reaches the brokers.
type Security struct {
	// TLS turns TLS on (Managed Service for Apache Kafka requires it).
	TLS bool
	// CACertFile is a PEM file of the CAs to trust instead of the system's
	// (a self-run Kafka with a private CA); "" uses the system roots.
	CACertFile string
	// SASL is SASLNone (or ""), SASLPlain or SASLOAuthBearer.
	SASL string
	// User and Password are the SASL/PLAIN credentials.
	User, Password string
	// Token returns the OAUTHBEARER token; nil means Google's application
	// default credentials in the format Managed Kafka expects
	// (GoogleTokenSource).
	Token func(ctx context.Context) (string, error)
}

// Opts returns the client options for s.
func (s Security) Opts(ctx context.Context) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CACertFile != "" {
			pem, err := os.ReadFile(s.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("kafka CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka CA certificate %s: no PEM certificate in it", s.CACertFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech, err := s.mechanism(ctx)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// validate checks the settings that need no network.
func (s Security) validate() error {
	switch s.SASL {
	case "", SASLNone, SASLOAuthBearer:
	case SASLPlain:
		if s.User == "" {
			return errors.New("KAFKA_USER: required with KAFKA_SASL=plain (and KAFKA_PASSWORD)")
		}
	default:
		return fmt.Errorf("KAFKA_SASL: %q is neither none, plain nor oauthbearer", s.SASL)
	}
	return nil
}

// mechanism returns the SASL mechanism, nil for none.
func (s Security) mechanism(ctx context.Context) (sasl.Mechanism, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	var mech sasl.Mechanism
	switch s.SASL {
	case SASLPlain:
		mech = plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case SASLOAuthBearer:
		token := s.Token
		if token == nil {
			ts, err := GoogleTokenSource(ctx)
			if err != nil {
				return nil, err
			}
			token = ts.Token
		}
		mech = oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			t, err := token(ctx)
			return oauth.Auth{Token: t}, err
		})
	}
	return mech, nil
}

// cloudPlatformScope is the scope Google's own Kafka auth handlers ask for.
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// GoogleTokens makes OAUTHBEARER tokens for Managed Service for Apache Kafka
// from Google credentials.
type GoogleTokens struct {
	src       oauth2.TokenSource
	principal string
	now       func() time.Time

	mu     sync.Mutex // protects cached
	cached string
	exp    time.Time
}

// GoogleTokenSource finds the application default credentials (on Cloud
// Run, the service account of the worker) and the principal they act as:
// the service account's email from the credentials file, else from the
// metadata server, else GOOGLE_MANAGED_KAFKA_AUTH_PRINCIPAL.
func GoogleTokenSource(ctx context.Context) (*GoogleTokens, error) {
	creds, err := google.FindDefaultCredentials(ctx, cloudPlatformScope)
	if err != nil {
		return nil, fmt.Errorf("kafka oauthbearer: Google credentials: %w", err)
	}
	var file struct {
		ClientEmail string `json:"client_email"`
	}
	principal := ""
	if len(creds.JSON) > 0 && json.Unmarshal(creds.JSON, &file) == nil {
		principal = file.ClientEmail
	}
	if principal == "" && metadata.OnGCE() {
		principal, _ = metadata.EmailWithContext(ctx, "default")
	}
	if principal == "" {
		principal = os.Getenv("GOOGLE_MANAGED_KAFKA_AUTH_PRINCIPAL")
	}
	if principal == "" {
		return nil, errors.New("kafka oauthbearer: cannot tell the credentials' principal; set GOOGLE_MANAGED_KAFKA_AUTH_PRINCIPAL")
	}
	return NewGoogleTokens(creds.TokenSource, principal, time.Now), nil
}

// NewGoogleTokens makes tokens from src's access tokens for principal.
func NewGoogleTokens(src oauth2.TokenSource, principal string, now func() time.Time) *GoogleTokens {
	return &GoogleTokens{src: oauth2.ReuseTokenSource(nil, src), principal: principal, now: now}
}

// Token returns a Managed Kafka OAUTHBEARER token, reused until a minute
// before its access token expires.
func (g *GoogleTokens) Token(context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.cached != "" && now.Add(time.Minute).Before(g.exp) {
		return g.cached, nil
	}
	at, err := g.src.Token()
	if err != nil {
		return "", fmt.Errorf("kafka oauthbearer: Google access token: %w", err)
	}
	g.cached, g.exp = ManagedKafkaToken(at.AccessToken, at.Expiry, g.principal, now), at.Expiry
	return g.cached, nil
}

// ManagedKafkaToken wraps a Google access token the way Google's own Kafka
// auth handlers do (googleapis/managedkafka: GcpLoginCallbackHandler.java
// in kafka-java-auth, and kafka_gcp_credentials_server.py): three unpadded
// base64url parts joined by dots, shaped like a JWT but unsigned,
//
//	{"typ":"JWT","alg":"GOOG_OAUTH2_TOKEN"}
//	{"exp":<expiry, Unix s>,"iat":<now, Unix s>,"scope":"kafka","sub":<principal email>}
//	<the access token itself>
//
// The broker checks the access token with Google; the claims name the
// principal whose IAM roles apply.
func ManagedKafkaToken(accessToken string, expiry time.Time, principal string, now time.Time) string {
	sub, _ := json.Marshal(principal) // a string always marshals
	claims := `{"exp":` + strconv.FormatInt(expiry.Unix(), 10) +
		`,"iat":` + strconv.FormatInt(now.Unix(), 10) +
		`,"scope":"kafka","sub":` + string(sub) + `}`
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"typ":"JWT","alg":"GOOG_OAUTH2_TOKEN"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte(accessToken))
}

// SecurityFromEnv reads the worker's Kafka security variables: KAFKA_TLS
// ("1" or "true" on), KAFKA_CA_CERT (PEM file), KAFKA_SASL (none, plain,
// oauthbearer), KAFKA_USER and KAFKA_PASSWORD (plain).
func SecurityFromEnv(getenv func(string) string) Security {
	tlsOn := getenv("KAFKA_TLS")
	return Security{
		TLS:        tlsOn == "1" || strings.EqualFold(tlsOn, "true"),
		CACertFile: getenv("KAFKA_CA_CERT"),
		SASL:       strings.ToLower(getenv("KAFKA_SASL")),
		User:       getenv("KAFKA_USER"),
		Password:   getenv("KAFKA_PASSWORD"),
	}
}
