package ivs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func pemPublicKey(t *testing.T, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestParsePlaybackPublicKey(t *testing.T) {
	good := pemPublicKey(t, elliptic.P384())
	if _, der, err := parsePlaybackPublicKey(good); err != nil {
		t.Fatalf("P-384 key rejected: %v", err)
	} else if fp := fingerprint(der); len(fp) != 47 || strings.Count(fp, ":") != 15 {
		t.Fatalf("fingerprint %q", fp)
	}
	for name, bad := range map[string]string{
		"P-256":   pemPublicKey(t, elliptic.P256()),
		"garbage": "hello",
		"two":     good + good,
		"private": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
	} {
		if _, _, err := parsePlaybackPublicKey(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestOriginAndCountryRules(t *testing.T) {
	for o, want := range map[string]bool{
		"https://example.com": true, "http://localhost:3000": true, "*": true,
		"example.com": false, "https://example.com/path": false, "ftp://x": false, "https://": false,
	} {
		if isOrigin(o) != want {
			t.Errorf("isOrigin(%q) != %v", o, want)
		}
	}
	for c, want := range map[string]bool{"US": true, "DE": true, "XX": false, "us": false, "D ": false, "USA": false, "": false} {
		if isISOCountry(c) != want {
			t.Errorf("isISOCountry(%q) != %v", c, want)
		}
	}
}
