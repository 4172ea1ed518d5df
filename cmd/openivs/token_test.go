package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/openivs/openivs/internal/playback"
)

const tokenTestARN = "arn:aws:ivs:us-west-2:123456789012:channel/abcdEFGH1234"

// runToken runs `openivs token args...` through run(), as the binary
// does, so the wiring in main.go is covered too.
func runToken(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"token"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// generatedKey runs --generate-key and returns the key file and the
// imported form of the printed public key.
func generatedKey(t *testing.T) (string, []playback.PublicKey) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "playback.pem")
	code, out, errOut := runToken(t, "--generate-key", file)
	if code != 0 {
		t.Fatalf("--generate-key: exit %d: %s", code, errOut)
	}
	block, rest := pem.Decode([]byte(out))
	if block == nil || block.Type != "PUBLIC KEY" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("stdout is not one PUBLIC KEY PEM block:\n%s", out)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P384() {
		t.Fatalf("public key is %T, not P-384", pub)
	}
	return file, []playback.PublicKey{{Key: ec, DER: string(block.Bytes)}}
}

func writePEM(t *testing.T, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestTokenGenerateKey(t *testing.T) {
	file, pub := generatedKey(t)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(file)
	if b, _ := pem.Decode(data); b == nil || b.Type != "EC PRIVATE KEY" {
		t.Errorf("key file is not an EC PRIVATE KEY PEM:\n%s", data)
	}
	key, err := readPlaybackKey(file)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pub[0].Key) {
		t.Error("printed public key is not the private key's")
	}

	// An existing key is never overwritten.
	code, _, errOut := runToken(t, "--generate-key", file)
	if code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("overwrite: exit %d, stderr %q", code, errOut)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, data) {
		t.Error("existing key file changed")
	}
	code, _, errOut = runToken(t, "--generate-key", filepath.Join(t.TempDir(), "k.pem"), "--channel-arn", tokenTestARN)
	if code != 2 || !strings.Contains(errOut, "--channel-arn") {
		t.Errorf("--generate-key with other flags: exit %d, stderr %q", code, errOut)
	}
}

func TestTokenMintVerifies(t *testing.T) {
	file, pub := generatedKey(t)
	now := time.Now()
	verify := func(t *testing.T, out string) *playback.Verified {
		t.Helper()
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("stdout is not one line: %q", out)
		}
		v, err := playback.VerifyToken(strings.TrimSuffix(out, "\n"), pub, now)
		if err != nil {
			t.Fatalf("VerifyToken: %v", err)
		}
		return v
	}

	t.Run("defaults", func(t *testing.T) {
		code, out, errOut := runToken(t, "--key", file, "--channel-arn", tokenTestARN)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		v := verify(t, out)
		if v.ChannelARN != tokenTestARN {
			t.Errorf("channel %q", v.ChannelARN)
		}
		if ahead := v.Exp - now.Unix(); ahead < 598 || ahead > 602 {
			t.Errorf("default exp %ds ahead, want 10m", ahead)
		}
		// Any JWT library must read it too: it is a plain ES384 JWT.
		_, err := jwt.Parse(strings.TrimSpace(out), func(*jwt.Token) (any, error) { return pub[0].Key, nil },
			jwt.WithValidMethods([]string{"ES384"}), jwt.WithExpirationRequired())
		if err != nil {
			t.Errorf("golang-jwt: %v", err)
		}
	})

	t.Run("all flags", func(t *testing.T) {
		fixed := time.Unix(1_750_000_000, 0)
		tokenNow = func() time.Time { return fixed }
		t.Cleanup(func() { tokenNow = time.Now })
		code, out, errOut := runToken(t, "--key", file, "--channel-arn", tokenTestARN, "--ttl", "5m",
			"--allow-origin", "https://a.example, https://b.example", "--strict-origin", "--single-use",
			"--viewer-id", "viewer-42", "--viewer-session-version", "9", "--max-resolution", "full_hd")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		v, err := playback.VerifyToken(strings.TrimSuffix(out, "\n"), pub, fixed)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(v.SingleUseUUID) {
			t.Errorf("single-use UUID %q is not a v4 UUID", v.SingleUseUUID)
		}
		want := playback.Claims{
			ChannelARN: tokenTestARN, Exp: fixed.Unix() + 300,
			AllowOrigins: []string{"https://a.example", "https://b.example"}, StrictOrigin: true,
			SingleUseUUID: v.SingleUseUUID, ViewerID: "viewer-42", ViewerSessionVersion: 9, MaximumResolution: "FULL_HD",
		}
		if !reflect.DeepEqual(v.Claims, want) {
			t.Errorf("claims\n got %+v\nwant %+v", v.Claims, want)
		}
	})

	t.Run("exp and single-use uuid", func(t *testing.T) {
		exp := now.Add(3 * time.Minute).Unix()
		const uuid = "6C4D8A9E-3F0B-4B8E-9D3E-2F8A1C5B7E90"
		code, out, errOut := runToken(t, "--key", file, "--channel-arn", tokenTestARN,
			"--exp", strconv.FormatInt(exp, 10), "--single-use-uuid", uuid, "--max-resolution", "SD")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		v := verify(t, out)
		if v.Exp != exp || v.SingleUseUUID != uuid || v.MaxHeight() != 480 {
			t.Errorf("claims %+v", v.Claims)
		}
	})

	t.Run("playback url", func(t *testing.T) {
		const base = "https://play.example/api/playback/us-west-2.123456789012.channel.abcdEFGH1234.m3u8?player=x"
		code, out, errOut := runToken(t, "--key", file, "--channel-arn", tokenTestARN, "--playback-url", base)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		u, err := url.Parse(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		if u.Query().Get("player") != "x" || !strings.HasPrefix(out, "https://play.example/api/playback/") {
			t.Errorf("URL lost its parts: %s", out)
		}
		verify(t, u.Query().Get("token")+"\n")
	})

	t.Run("PKCS#8 and EC PARAMETERS", func(t *testing.T) {
		key, err := readPlaybackKey(file)
		if err != nil {
			t.Fatal(err)
		}
		p8, _ := x509.MarshalPKCS8PrivateKey(key)
		sec1, _ := x509.MarshalECPrivateKey(key)
		params := []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22} // OID secp384r1
		for name, f := range map[string]string{
			"PKCS#8":        writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
			"EC PARAMETERS": writePEM(t, &pem.Block{Type: "EC PARAMETERS", Bytes: params}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		} {
			code, out, errOut := runToken(t, "--key", f, "--channel-arn", tokenTestARN)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", name, code, errOut)
			}
			verify(t, out)
		}
	})
}

func TestTokenErrors(t *testing.T) {
	file, _ := generatedKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalECPrivateKey(p256)
	p256P8, _ := x509.MarshalPKCS8PrivateKey(p256)
	rsaP8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := readPlaybackKey(file)
	pubDER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	now := time.Now()

	arn := []string{"--channel-arn", tokenTestARN}
	withKey := func(args ...string) []string { return append([]string{"--key", file}, args...) }
	cases := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"no key flag", arn, 2, "--key is required"},
		{"missing key file", append([]string{"--key", filepath.Join(t.TempDir(), "nope.pem")}, arn...), 1, "no such file"},
		{"not PEM", append([]string{"--key", garbage}, arn...), 1, "no PEM private key"},
		{"RSA key", append([]string{"--key", writePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})}, arn...), 1, "RSA"},
		{"RSA PKCS#8 key", append([]string{"--key", writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: rsaP8})}, arn...), 1, "ECDSA P-384"},
		{"P-256 key", append([]string{"--key", writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: p256DER})}, arn...), 1, "P-256"},
		{"P-256 PKCS#8 key", append([]string{"--key", writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: p256P8})}, arn...), 1, "P-384"},
		{"public key", append([]string{"--key", writePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}, arn...), 1, "public key"},
		{"no channel arn", withKey(), 2, "--channel-arn is required"},
		{"bad channel arn", withKey("--channel-arn", "abcdEFGH1234"), 2, "not a channel ARN"},
		{"viewer id too long", withKey(append(arn, "--viewer-id", strings.Repeat("v", 41))...), 2, "at most 40"},
		{"ttl too long with viewer id", withKey(append(arn, "--viewer-id", "v", "--ttl", "11m")...), 2, "at most 10m"},
		{"ttl too long with single use", withKey(append(arn, "--single-use", "--ttl", "11m")...), 2, "at most 10m"},
		{"exp too far with viewer id", withKey(append(arn, "--viewer-id", "v", "--exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))...), 2, "at most 10m"},
		{"exp in milliseconds", withKey(append(arn, "--exp", strconv.FormatInt(now.UnixMilli()+60000, 10))...), 2, "milliseconds"},
		{"exp past", withKey(append(arn, "--exp", strconv.FormatInt(now.Unix()-1, 10))...), 2, "not in the future"},
		{"ttl and exp", withKey(append(arn, "--ttl", "1m", "--exp", strconv.FormatInt(now.Unix()+60, 10))...), 2, "not both"},
		{"ttl zero", withKey(append(arn, "--ttl", "0s")...), 2, "at least 1s"},
		{"bad resolution", withKey(append(arn, "--max-resolution", "4K")...), 2, "SD, HD or FULL_HD"},
		{"strict without origins", withKey(append(arn, "--strict-origin")...), 2, "needs --allow-origin"},
		{"strict with 6 origins", withKey(append(arn, "--strict-origin", "--allow-origin", "a,b,c,d,e,f")...), 2, "at most 5"},
		{"single use twice", withKey(append(arn, "--single-use", "--single-use-uuid", "6c4d8a9e-3f0b-4b8e-9d3e-2f8a1c5b7e90")...), 2, "not both"},
		{"bad uuid", withKey(append(arn, "--single-use-uuid", "nope")...), 2, "not a UUID"},
		{"session version without viewer", withKey(append(arn, "--viewer-session-version", "3")...), 2, "needs --viewer-id"},
		{"bad playback url", withKey(append(arn, "--playback-url", "play.example/x.m3u8")...), 2, "not an http(s) URL"},
		{"oversize", withKey(append(arn, "--allow-origin", strings.Repeat("https://a.example,", 120))...), 1, "at most 2048"},
		{"unknown flag", withKey(append(arn, "--nope")...), 2, "not defined"},
		{"bad duration", withKey(append(arn, "--ttl", "soon")...), 2, "invalid value"},
		{"positional argument", withKey(append(arn, "extra")...), 2, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runToken(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.want)
			}
			if out != "" {
				t.Errorf("stdout %q on error", out)
			}
		})
	}
}

func TestTokenHelp(t *testing.T) {
	code, out, _ := runToken(t, "--help")
	if code != 0 || !strings.Contains(out, "--generate-key") || !strings.Contains(out, "-max-resolution") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
	var stdout bytes.Buffer
	run([]string{"help"}, &stdout, &stdout)
	if !strings.Contains(stdout.String(), "openivs token ") {
		t.Error("usage does not list openivs token")
	}
}
