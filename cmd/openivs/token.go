package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openivs/openivs/internal/playback"
)

const tokenUsage = `Usage:
  openivs token --key FILE --channel-arn ARN [flags]
      mint a playback token for a private channel, signed with the private
      half of a key pair imported with ImportPlaybackKeyPair; the token is
      printed on stdout
  openivs token --generate-key FILE
      write a new P-384 private key (PEM, mode 0600) to FILE and print its
      public key, for aws ivs import-playback-key-pair --public-key-material

Flags:
`

// tokenNow is the clock of `openivs token`; tests fix it.
var tokenNow = time.Now

// tokenUsageErr is a bad command line (exit status 2), as opposed to a key
// that cannot be read or used (exit status 1).
type tokenUsageErr struct{ msg string }

func (e *tokenUsageErr) Error() string { return e.msg }

func tokenUsageError(format string, args ...any) error {
	return &tokenUsageErr{fmt.Sprintf(format, args...)}
}

// tokenCmd runs `openivs token`, the equivalent of the token-signing
// example in IVS's guide for those without a JWT library at hand.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("openivs token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // help goes to stdout below; errors get a hint
	var (
		generate       = fs.String("generate-key", "", "write a new P-384 private key PEM to `FILE` and print the public key")
		keyFile        = fs.String("key", "", "private key PEM `FILE` (EC PRIVATE KEY or PKCS#8 PRIVATE KEY, P-384)")
		channelARN     = fs.String("channel-arn", "", "`ARN` of the channel to play (required)")
		ttl            = fs.Duration("ttl", playback.MaxShortLivedExp, "lifetime of the token: exp = now + `DURATION`")
		exp            = fs.Int64("exp", 0, "expiry as `UNIX` time in seconds, instead of --ttl")
		allowOrigin    = fs.String("allow-origin", "", "comma-separated `LIST` of origins allowed to play (aws:access-control-allow-origin)")
		strictOrigin   = fs.Bool("strict-origin", false, "refuse playback from other origins (aws:strict-origin-enforcement)")
		singleUse      = fs.Bool("single-use", false, "make the token single-use with a random UUID (aws:single-use-uuid)")
		singleUseUUID  = fs.String("single-use-uuid", "", "make the token single-use with this `UUID`")
		viewerID       = fs.String("viewer-id", "", "viewer `ID` (at most 40 characters), for revoking this viewer")
		sessionVersion = fs.Int64("viewer-session-version", 0, "viewer session version `N` (needs --viewer-id)")
		maxRes         = fs.String("max-resolution", "", "highest rendition `CLASS`: SD, HD or FULL_HD (aws:maximum-resolution)")
		playbackURL    = fs.String("playback-url", "", "print this playback `URL` with ?token= appended instead of the bare token")
	)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, tokenUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	case err != nil: // the flag package printed it
		fmt.Fprintln(stderr, "(see openivs token --help)")
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	switch {
	case fs.NArg() > 0:
		err = tokenUsageError("unexpected argument %q", fs.Arg(0))
	case set["generate-key"]:
		err = generateKeyCmd(*generate, set, stdout, stderr)
	case *keyFile == "":
		err = tokenUsageError("--key is required (or --generate-key to create one)")
	default:
		var c *playback.Claims
		c, err = tokenClaims(set, tokenFlags{
			channelARN: *channelARN, ttl: *ttl, exp: *exp, allowOrigin: *allowOrigin,
			strictOrigin: *strictOrigin, singleUse: *singleUse, singleUseUUID: *singleUseUUID,
			viewerID: *viewerID, sessionVersion: *sessionVersion, maxRes: *maxRes,
		})
		if err == nil {
			err = mintToken(*keyFile, c, *playbackURL, stdout)
		}
	}
	var usage *tokenUsageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "openivs token: %s\n(see openivs token --help)\n", usage.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "openivs token: %v\n", err)
		return 1
	}
}

type tokenFlags struct {
	channelARN, allowOrigin, singleUseUUID, viewerID, maxRes string
	ttl                                                      time.Duration
	exp, sessionVersion                                      int64
	strictOrigin, singleUse                                  bool
}

// uuidPattern is the textual form of a UUID, which is what IVS expects in
// aws:single-use-uuid.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tokenClaims checks the flags here, with messages naming the flag,
// rather than leaving the viewer to get an opaque 403 from playback.
func tokenClaims(set map[string]bool, f tokenFlags) (*playback.Claims, error) {
	now := tokenNow()
	c := &playback.Claims{ChannelARN: f.channelARN, ViewerID: f.viewerID, ViewerSessionVersion: f.sessionVersion}
	if c.ChannelARN == "" {
		return nil, tokenUsageError("--channel-arn is required")
	}
	if !strings.HasPrefix(c.ChannelARN, "arn:") || !strings.Contains(c.ChannelARN, ":channel/") {
		return nil, tokenUsageError("--channel-arn %q is not a channel ARN (arn:aws:ivs:REGION:ACCOUNT:channel/ID)", c.ChannelARN)
	}

	switch {
	case set["exp"] && set["ttl"]:
		return nil, tokenUsageError("give --ttl or --exp, not both")
	case set["exp"]:
		// IVS's Node.js example writes Date.now()+60000, in milliseconds;
		// IVS and openivs want seconds.
		if f.exp >= 1e11 {
			return nil, tokenUsageError("--exp %d looks like milliseconds; exp is in Unix seconds", f.exp)
		}
		if f.exp <= now.Unix() {
			return nil, tokenUsageError("--exp %d is not in the future", f.exp)
		}
		c.Exp = f.exp
	default:
		if f.ttl < time.Second {
			return nil, tokenUsageError("--ttl %s must be at least 1s", f.ttl)
		}
		c.Exp = now.Add(f.ttl).Unix()
	}

	if f.allowOrigin != "" {
		for _, o := range strings.Split(f.allowOrigin, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.AllowOrigins = append(c.AllowOrigins, o)
			}
		}
	}
	if f.strictOrigin {
		if len(c.AllowOrigins) == 0 {
			return nil, tokenUsageError("--strict-origin needs --allow-origin")
		}
		if len(c.AllowOrigins) > playback.MaxStrictOrigins {
			return nil, tokenUsageError("--strict-origin allows at most %d origins, got %d", playback.MaxStrictOrigins, len(c.AllowOrigins))
		}
		c.StrictOrigin = true
	}

	switch {
	case f.singleUse && f.singleUseUUID != "":
		return nil, tokenUsageError("give --single-use or --single-use-uuid, not both")
	case f.singleUse:
		c.SingleUseUUID = newUUID()
	case f.singleUseUUID != "":
		if !uuidPattern.MatchString(f.singleUseUUID) {
			return nil, tokenUsageError("--single-use-uuid %q is not a UUID", f.singleUseUUID)
		}
		c.SingleUseUUID = f.singleUseUUID
	}

	if set["viewer-id"] && c.ViewerID == "" {
		return nil, tokenUsageError("--viewer-id is empty")
	}
	if n := utf8.RuneCountInString(c.ViewerID); n > playback.MaxViewerIDLen {
		return nil, tokenUsageError("--viewer-id has %d characters; at most %d", n, playback.MaxViewerIDLen)
	}
	// The claim is only meaningful, and only written, with a viewer id.
	if set["viewer-session-version"] && c.ViewerID == "" {
		return nil, tokenUsageError("--viewer-session-version needs --viewer-id")
	}
	if (c.ViewerID != "" || c.SingleUseUUID != "") && c.Exp > now.Add(playback.MaxShortLivedExp).Unix() {
		return nil, tokenUsageError("with --viewer-id or single use, the token may live at most %s (exp is %ds ahead)",
			playback.MaxShortLivedExp, c.Exp-now.Unix())
	}

	if f.maxRes != "" {
		c.MaximumResolution = strings.ToUpper(f.maxRes)
		if c.MaxHeight() == 0 {
			return nil, tokenUsageError("--max-resolution %q must be SD, HD or FULL_HD", f.maxRes)
		}
	}
	return c, nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// mintToken signs c with the key in keyFile and prints the token, or the
// playback URL carrying it.
func mintToken(keyFile string, c *playback.Claims, playbackURL string, stdout io.Writer) error {
	var u *url.URL
	if playbackURL != "" {
		var err error
		u, err = url.Parse(playbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return tokenUsageError("--playback-url %q is not an http(s) URL", playbackURL)
		}
	}
	key, err := readPlaybackKey(keyFile)
	if err != nil {
		return err
	}
	tok, err := playback.SignToken(key, *c)
	if err != nil {
		return err
	}
	if len(tok) > playback.MaxTokenLen {
		return fmt.Errorf("the token is %d bytes; IVS accepts at most %d (shorten --allow-origin or --viewer-id)", len(tok), playback.MaxTokenLen)
	}
	if u != nil {
		q := u.Query()
		q.Set("token", tok)
		u.RawQuery = q.Encode()
		tok = u.String()
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// readPlaybackKey reads a P-384 private key from a PEM file as openssl
// writes it: SEC1 "EC PRIVATE KEY" (possibly after "EC PARAMETERS") or
// PKCS#8 "PRIVATE KEY".
func readPlaybackKey(file string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("--key %s: no PEM private key found", file)
		}
		var key any
		switch block.Type {
		case "EC PARAMETERS": // `openssl ecparam -genkey` without -noout
			continue
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			return nil, fmt.Errorf("--key %s is an RSA key; playback tokens need an ECDSA P-384 key", file)
		case "PUBLIC KEY":
			return nil, fmt.Errorf("--key %s is a public key; tokens are signed with the private key", file)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("--key %s is encrypted; decrypt it first (openssl pkcs8 -in %s -out plain.pem)", file, file)
		default:
			return nil, fmt.Errorf("--key %s: unsupported PEM block %q; want EC PRIVATE KEY or PRIVATE KEY", file, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("--key %s: %v", file, err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("--key %s is a %T; playback tokens need an ECDSA P-384 key", file, key)
		}
		if ec.Curve != elliptic.P384() {
			return nil, fmt.Errorf("--key %s is on curve %s; playback tokens need P-384 (secp384r1)", file, ec.Curve.Params().Name)
		}
		return ec, nil
	}
}

// generateKeyCmd makes the key pair IVS's console creates and its API does
// not. The private key never leaves FILE; stdout gets only the public PEM,
// so it can be redirected into the import call.
func generateKeyCmd(file string, set map[string]bool, stdout, stderr io.Writer) error {
	for name := range set {
		if name != "generate-key" {
			return tokenUsageError("--generate-key takes no other flag (got --%s)", name)
		}
	}
	if file == "" {
		return tokenUsageError("--generate-key needs a FILE")
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	// O_EXCL: overwriting a key would orphan every token signed with it.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--generate-key: %w", err)
	}
	if err = pem.Encode(f, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("--generate-key: %w", err)
	}
	if err := pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: pub}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "openivs token: wrote the private key to %s (keep it secret); import the public key above with\n"+
		"  aws ivs import-playback-key-pair --public-key-material file://public.pem\n", file)
	return nil
}
