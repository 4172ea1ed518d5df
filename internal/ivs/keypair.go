package ivs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// PlaybackKeyPair is the API shape; only the public key is ever held.
type PlaybackKeyPair struct {
	Arn         string            `json:"arn"`
	Name        string            `json:"name"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Tags        map[string]string `json:"tags"`
}

type keyPairDoc struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"publicKey"` // PEM, as imported
}

// parsePlaybackPublicKey accepts exactly one PEM "PUBLIC KEY" block holding
// an ECDSA P-384 key, the only kind IVS playback tokens (ES384) use.
func parsePlaybackPublicKey(material string) (*ecdsa.PublicKey, []byte, error) {
	block, rest := pem.Decode([]byte(material))
	if block == nil {
		return nil, nil, awsapi.Validation("publicKeyMaterial: not a PEM-encoded public key.")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, nil, awsapi.Validation("publicKeyMaterial: must hold exactly one PEM block.")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, nil, awsapi.Validation("publicKeyMaterial: expected a PEM PUBLIC KEY block, got %q (import only the public key).", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, awsapi.Validation("publicKeyMaterial: the public key cannot be parsed.")
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P384() {
		return nil, nil, awsapi.Validation("publicKeyMaterial: the key must be an ECDSA public key on curve P-384 (secp384r1).")
	}
	return ec, block.Bytes, nil
}

// fingerprint is 16 colon-separated hex bytes, as IVS shows them.
func fingerprint(der []byte) string {
	sum := md5.Sum(der)
	h := hex.EncodeToString(sum[:])
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func keyPairOut(r *store.Resource, withFingerprint bool) (*PlaybackKeyPair, error) {
	var d keyPairDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	k := &PlaybackKeyPair{Arn: r.ARN, Name: d.Name, Tags: tagsOrEmpty(r.Tags)}
	if withFingerprint {
		k.Fingerprint = d.Fingerprint
	}
	return k, nil
}

func (s *Service) importPlaybackKeyPair(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		PublicKeyMaterial string            `json:"publicKeyMaterial"`
		Name              string            `json:"name"`
		Tags              map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	_, der, err := parsePlaybackPublicKey(in.PublicKeyMaterial)
	if err != nil {
		return nil, err
	}
	d := keyPairDoc{Name: in.Name, Fingerprint: fingerprint(der), PublicKey: in.PublicKeyMaterial}
	doc, _ := json.Marshal(d)
	r := &store.Resource{
		ARN: s.arn(call.Account, KindPlaybackKeyPair, randomID(12)), Kind: KindPlaybackKeyPair,
		Account: call.Account, Name: in.Name, Unique: call.Account + "/" + d.Fingerprint, Tags: in.Tags, Doc: doc,
	}
	err = s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.PlaybackKeyPairs})
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		return nil, awsapi.QuotaExceeded("Playback key pair quota of %d has been reached.", s.cfg.Quotas.PlaybackKeyPairs)
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, awsapi.Conflict("A playback key pair with fingerprint %s has already been imported.", d.Fingerprint)
	case err != nil:
		return nil, storeError(err)
	}
	out, err := keyPairOut(r, true)
	if err != nil {
		return nil, err
	}
	return map[string]any{"keyPair": out}, nil
}

func (s *Service) listPlaybackKeyPairs(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindPlaybackKeyPair, Account: call.Account}
	items, next, err := paginate(ctx, s.store, call, q, "", in.MaxResults, 100, in.NextToken)
	if err != nil {
		return nil, err
	}
	pairs := make([]*PlaybackKeyPair, 0, len(items))
	for _, r := range items {
		k, err := keyPairOut(r, false)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, k)
	}
	return listOut("keyPairs", pairs, next), nil
}
