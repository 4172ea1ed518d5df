package app

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// RootCredentials are the API credentials of the root account.
type RootCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// Source is "env", or the path of the credentials file they came from.
	Source string
	// Generated is true when this run created them (so serve prints the
	// secret, once).
	Generated bool
}

// credentialStore resolves access key ids for the API server.
type credentialStore struct {
	root    RootCredentials
	account string
}

// Lookup implements awsapi.Credentials.
func (c *credentialStore) Lookup(accessKeyID string) (secret, account string, ok bool) {
	if accessKeyID == "" || accessKeyID != c.root.AccessKeyID {
		return "", "", false
	}
	return c.root.SecretAccessKey, c.account, true
}

// credentialsFile is the file root credentials are kept in, in the AWS
// shared-credentials format so it can be used as AWS_SHARED_CREDENTIALS_FILE.
const credentialsFile = "credentials"

// resolveCredentials uses the environment's credentials when given, else
// reads DATA_DIR/credentials, else generates new ones into it.
func resolveCredentials(dataDir, envID, envSecret string) (RootCredentials, error) {
	if envID != "" && envSecret != "" {
		return RootCredentials{AccessKeyID: envID, SecretAccessKey: envSecret, Source: "env"}, nil
	}
	path := filepath.Join(dataDir, credentialsFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, secret, err := parseCredentials(raw)
		if err != nil {
			return RootCredentials{}, fmt.Errorf("%s: %w (fix or delete it to generate new credentials)", path, err)
		}
		return RootCredentials{AccessKeyID: id, SecretAccessKey: secret, Source: path}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return RootCredentials{}, fmt.Errorf("reading credentials: %w", err)
	}

	id := "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	secret := randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	body := fmt.Sprintf("[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", id, secret)
	// O_EXCL: never overwrite credentials another process has just written.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return RootCredentials{}, fmt.Errorf("writing credentials: %w", err)
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		os.Remove(path)
		return RootCredentials{}, fmt.Errorf("writing credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return RootCredentials{}, fmt.Errorf("writing credentials: %w", err)
	}
	return RootCredentials{AccessKeyID: id, SecretAccessKey: secret, Source: path, Generated: true}, nil
}

// parseCredentials reads the [default] profile of a shared-credentials file.
func parseCredentials(raw []byte) (id, secret string, err error) {
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "default" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "aws_access_key_id":
			id = strings.TrimSpace(value)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(value)
		}
	}
	if id == "" || secret == "" {
		return "", "", errors.New("no aws_access_key_id and aws_secret_access_key in a [default] section")
	}
	return id, secret, nil
}

// randomString draws n characters uniformly from alphabet (len ≤ 256).
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the modulo
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
