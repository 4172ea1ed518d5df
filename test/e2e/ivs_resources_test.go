package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/testutil/pgtest"
)

// publicKeyPEM returns a fresh public key of curve as PEM (PKIX).
func ecPublicKeyPEM(t testing.TB, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	must(t, err, "generate key")
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err, "marshal key")
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestPlaybackKeyPairs(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	// Keys IVS does not accept.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err, "rsa key")
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	must(t, err, "rsa der")
	ecPriv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, err, "ec key")
	privDER, err := x509.MarshalPKCS8PrivateKey(ecPriv)
	must(t, err, "pkcs8")
	ecDER, err := x509.MarshalECPrivateKey(ecPriv)
	must(t, err, "sec1")
	bad := map[string]string{
		"P-256":          ecPublicKeyPEM(t, elliptic.P256()),
		"RSA":            string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})),
		"PKCS8 private":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		"SEC1 private":   string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})),
		"garbage":        "this is not a key",
		"garbage in PEM": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")})),
	}
	for name, material := range bad {
		_, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(material)})
		wantErr[*types.ValidationException](t, err, stValidation, "ImportPlaybackKeyPair "+name)
	}

	first := ecPublicKeyPEM(t, elliptic.P384())
	imp, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{
		PublicKeyMaterial: aws.String(first), Name: aws.String("kp-1"), Tags: map[string]string{"env": "test"},
	})
	must(t, err, "ImportPlaybackKeyPair P-384")
	kp := imp.KeyPair
	if !keyPairARNRe.MatchString(aws.ToString(kp.Arn)) {
		t.Errorf("key pair arn %q does not match %s", aws.ToString(kp.Arn), keyPairARNRe)
	}
	if !fingerprintRe.MatchString(aws.ToString(kp.Fingerprint)) {
		t.Errorf("fingerprint %q is not 16 colon-separated lowercase hex bytes", aws.ToString(kp.Fingerprint))
	}
	eq(t, "name", aws.ToString(kp.Name), "kp-1")
	deepEq(t, "tags", kp.Tags, map[string]string{"env": "test"})

	// The same key again conflicts.
	_, err = c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(first), Name: aws.String("again")})
	wantErr[*types.ConflictException](t, err, stConflict, "ImportPlaybackKeyPair same key twice")

	got, err := c.GetPlaybackKeyPair(cx, &ivs.GetPlaybackKeyPairInput{Arn: kp.Arn})
	must(t, err, "GetPlaybackKeyPair")
	eq(t, "get fingerprint", aws.ToString(got.KeyPair.Fingerprint), aws.ToString(kp.Fingerprint))
	eq(t, "get name", aws.ToString(got.KeyPair.Name), "kp-1")
	eq(t, "get arn", aws.ToString(got.KeyPair.Arn), aws.ToString(kp.Arn))

	arns := []string{aws.ToString(kp.Arn)}
	fingerprints := map[string]bool{aws.ToString(kp.Fingerprint): true}
	for i := 2; i <= 3; i++ {
		out, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(ecPublicKeyPEM(t, elliptic.P384()))})
		must(t, err, fmt.Sprintf("ImportPlaybackKeyPair #%d", i))
		arns = append(arns, aws.ToString(out.KeyPair.Arn))
		if fingerprints[aws.ToString(out.KeyPair.Fingerprint)] {
			t.Errorf("two different keys share fingerprint %s", aws.ToString(out.KeyPair.Fingerprint))
		}
		fingerprints[aws.ToString(out.KeyPair.Fingerprint)] = true
	}
	_, err = c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(ecPublicKeyPEM(t, elliptic.P384()))})
	wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "4th ImportPlaybackKeyPair")

	ls, err := c.ListPlaybackKeyPairs(cx, &ivs.ListPlaybackKeyPairsInput{})
	must(t, err, "ListPlaybackKeyPairs")
	var listed []string
	for _, s := range ls.KeyPairs {
		listed = append(listed, aws.ToString(s.Arn))
	}
	if !sameSet(listed, arns) {
		t.Errorf("ListPlaybackKeyPairs = %v, want %v", listed, arns)
	}
	page, err := c.ListPlaybackKeyPairs(cx, &ivs.ListPlaybackKeyPairsInput{MaxResults: aws.Int32(2)})
	must(t, err, "ListPlaybackKeyPairs page")
	if len(page.KeyPairs) != 2 || page.NextToken == nil {
		t.Errorf("ListPlaybackKeyPairs maxResults 2 = %d items, token %v", len(page.KeyPairs), page.NextToken)
	} else {
		rest, err := c.ListPlaybackKeyPairs(cx, &ivs.ListPlaybackKeyPairsInput{MaxResults: aws.Int32(2), NextToken: page.NextToken})
		must(t, err, "ListPlaybackKeyPairs page 2")
		if len(rest.KeyPairs) != 1 || rest.NextToken != nil {
			t.Errorf("ListPlaybackKeyPairs page 2 = %d items, token %v", len(rest.KeyPairs), rest.NextToken)
		}
	}

	_, err = c.DeletePlaybackKeyPair(cx, &ivs.DeletePlaybackKeyPairInput{Arn: kp.Arn})
	must(t, err, "DeletePlaybackKeyPair")
	_, err = c.GetPlaybackKeyPair(cx, &ivs.GetPlaybackKeyPairInput{Arn: kp.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetPlaybackKeyPair after delete")
	_, err = c.DeletePlaybackKeyPair(cx, &ivs.DeletePlaybackKeyPairInput{Arn: kp.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeletePlaybackKeyPair twice")
	_, err = c.DeletePlaybackKeyPair(cx, &ivs.DeletePlaybackKeyPairInput{Arn: aws.String(unknownKeyPairARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeletePlaybackKeyPair unknown")
	_, err = c.GetPlaybackKeyPair(cx, &ivs.GetPlaybackKeyPairInput{Arn: aws.String(otherAccount(arns[1]))})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetPlaybackKeyPair other account")
	_, err = c.GetPlaybackKeyPair(cx, &ivs.GetPlaybackKeyPairInput{Arn: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/abcdefghijkl")})
	wantErr[*types.ValidationException](t, err, stValidation, "GetPlaybackKeyPair with a channel ARN", "arn")

	// The slot freed by the delete can be used again, and so can the key.
	_, err = c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(first)})
	must(t, err, "ImportPlaybackKeyPair after delete")
}

func TestPlaybackRestrictionPolicies(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	cr, err := c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{
		Name:                          aws.String("geo"),
		AllowedCountries:              []string{"US", "DE"},
		AllowedOrigins:                []string{"https://example.com"},
		EnableStrictOriginEnforcement: aws.Bool(true),
		Tags:                          map[string]string{"team": "video"},
	})
	must(t, err, "CreatePlaybackRestrictionPolicy")
	p := cr.PlaybackRestrictionPolicy
	if !policyARNRe.MatchString(aws.ToString(p.Arn)) {
		t.Errorf("policy arn %q does not match %s", aws.ToString(p.Arn), policyARNRe)
	}
	eq(t, "name", aws.ToString(p.Name), "geo")
	deepEq(t, "allowedCountries", p.AllowedCountries, []string{"US", "DE"})
	deepEq(t, "allowedOrigins", p.AllowedOrigins, []string{"https://example.com"})
	eq(t, "enableStrictOriginEnforcement", aws.ToBool(p.EnableStrictOriginEnforcement), true)
	deepEq(t, "tags", p.Tags, map[string]string{"team": "video"})

	got, err := c.GetPlaybackRestrictionPolicy(cx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: p.Arn})
	must(t, err, "GetPlaybackRestrictionPolicy")
	deepEq(t, "get allowedCountries", got.PlaybackRestrictionPolicy.AllowedCountries, []string{"US", "DE"})
	deepEq(t, "get allowedOrigins", got.PlaybackRestrictionPolicy.AllowedOrigins, []string{"https://example.com"})
	eq(t, "get enableStrictOriginEnforcement", aws.ToBool(got.PlaybackRestrictionPolicy.EnableStrictOriginEnforcement), true)

	// Update changes only what it is given.
	up, err := c.UpdatePlaybackRestrictionPolicy(cx, &ivs.UpdatePlaybackRestrictionPolicyInput{
		Arn: p.Arn, AllowedCountries: []string{"FR"}, Name: aws.String("geo-fr"),
	})
	must(t, err, "UpdatePlaybackRestrictionPolicy")
	u := up.PlaybackRestrictionPolicy
	deepEq(t, "updated allowedCountries", u.AllowedCountries, []string{"FR"})
	deepEq(t, "kept allowedOrigins", u.AllowedOrigins, []string{"https://example.com"})
	eq(t, "updated name", aws.ToString(u.Name), "geo-fr")
	eq(t, "kept enableStrictOriginEnforcement", aws.ToBool(u.EnableStrictOriginEnforcement), true)
	up, err = c.UpdatePlaybackRestrictionPolicy(cx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: p.Arn, EnableStrictOriginEnforcement: aws.Bool(false)})
	must(t, err, "UpdatePlaybackRestrictionPolicy strict off")
	eq(t, "strict off", aws.ToBool(up.PlaybackRestrictionPolicy.EnableStrictOriginEnforcement), false)
	deepEq(t, "countries kept", up.PlaybackRestrictionPolicy.AllowedCountries, []string{"FR"})

	ls, err := c.ListPlaybackRestrictionPolicies(cx, &ivs.ListPlaybackRestrictionPoliciesInput{})
	must(t, err, "ListPlaybackRestrictionPolicies")
	if len(ls.PlaybackRestrictionPolicies) != 1 || aws.ToString(ls.PlaybackRestrictionPolicies[0].Arn) != aws.ToString(p.Arn) {
		t.Errorf("ListPlaybackRestrictionPolicies = %+v", ls.PlaybackRestrictionPolicies)
	} else {
		deepEq(t, "summary allowedCountries", ls.PlaybackRestrictionPolicies[0].AllowedCountries, []string{"FR"})
		eq(t, "summary name", aws.ToString(ls.PlaybackRestrictionPolicies[0].Name), "geo-fr")
	}

	// Invalid input.
	badCountries := [][]string{{"XX"}, {"us"}, {"USA"}}
	for _, cs := range badCountries {
		_, err := c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: cs})
		wantErr[*types.ValidationException](t, err, stValidation, fmt.Sprintf("CreatePlaybackRestrictionPolicy country %v", cs), "allowedCountries")
	}
	for _, o := range []string{"example.com", "not an origin", "https://"} {
		_, err := c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedOrigins: []string{o}})
		wantErr[*types.ValidationException](t, err, stValidation, fmt.Sprintf("CreatePlaybackRestrictionPolicy origin %q", o), "allowedOrigins")
	}
	_, err = c.UpdatePlaybackRestrictionPolicy(cx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: p.Arn, AllowedCountries: []string{"XX"}})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdatePlaybackRestrictionPolicy country XX", "allowedCountries")
	var six []string
	for i := 0; i < 6; i++ {
		six = append(six, fmt.Sprintf("https://o%d.example.com", i))
	}
	_, err = c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedOrigins: six})
	wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "CreatePlaybackRestrictionPolicy 6 origins")
	_, err = c.UpdatePlaybackRestrictionPolicy(cx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: p.Arn, AllowedOrigins: six})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdatePlaybackRestrictionPolicy 6 origins (the operation declares no ServiceQuotaExceededException)", "allowedOrigins")
	_, err = c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedOrigins: six[:5]})
	must(t, err, "CreatePlaybackRestrictionPolicy 5 origins")

	// Quota: 3 policies.
	_, err = c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{})
	must(t, err, "3rd CreatePlaybackRestrictionPolicy")
	_, err = c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{})
	wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "4th CreatePlaybackRestrictionPolicy")

	// Unknown policies.
	_, err = c.GetPlaybackRestrictionPolicy(cx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: aws.String(unknownPolicyARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetPlaybackRestrictionPolicy unknown")
	_, err = c.UpdatePlaybackRestrictionPolicy(cx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: aws.String(unknownPolicyARN), Name: aws.String("x")})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "UpdatePlaybackRestrictionPolicy unknown")
	_, err = c.DeletePlaybackRestrictionPolicy(cx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: aws.String(unknownPolicyARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeletePlaybackRestrictionPolicy unknown")
	_, err = c.GetPlaybackRestrictionPolicy(cx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: aws.String(otherAccount(aws.ToString(p.Arn)))})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetPlaybackRestrictionPolicy other account")
	_, err = c.CreateChannel(cx, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: aws.String(unknownPolicyARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "CreateChannel with an unknown policy")

	// A policy in use cannot be deleted.
	ch := createChannel(t, c, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: p.Arn}).Channel
	eq(t, "channel policy", aws.ToString(ch.PlaybackRestrictionPolicyArn), aws.ToString(p.Arn))
	_, err = c.DeletePlaybackRestrictionPolicy(cx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: p.Arn})
	wantErr[*types.ConflictException](t, err, stConflict, "DeletePlaybackRestrictionPolicy attached")
	upc, err := c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, PlaybackRestrictionPolicyArn: aws.String("")})
	must(t, err, "UpdateChannel detach policy")
	eq(t, "detached policy", aws.ToString(upc.Channel.PlaybackRestrictionPolicyArn), "")
	_, err = c.DeletePlaybackRestrictionPolicy(cx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: p.Arn})
	must(t, err, "DeletePlaybackRestrictionPolicy after detach")
	_, err = c.GetPlaybackRestrictionPolicy(cx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: p.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetPlaybackRestrictionPolicy after delete")
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, PlaybackRestrictionPolicyArn: p.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "UpdateChannel with a deleted policy")
}

func TestRecordingConfigurations(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	dest := func(bucket string) *types.DestinationConfiguration {
		return &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}}
	}
	cr, err := c.CreateRecordingConfiguration(cx, &ivs.CreateRecordingConfigurationInput{
		Name: aws.String("rec"), DestinationConfiguration: dest("my-recordings"), Tags: map[string]string{"k": "v"},
	})
	must(t, err, "CreateRecordingConfiguration")
	rc := cr.RecordingConfiguration
	if !recordingARNRe.MatchString(aws.ToString(rc.Arn)) {
		t.Errorf("recording configuration arn %q does not match %s", aws.ToString(rc.Arn), recordingARNRe)
	}
	// IVS answers CREATING and checks the bucket in the background (here
	// a local directory, which the check creates).
	eq(t, "state", rc.State, types.RecordingConfigurationStateCreating)
	eq(t, "name", aws.ToString(rc.Name), "rec")
	if rc.DestinationConfiguration == nil || rc.DestinationConfiguration.S3 == nil {
		t.Errorf("destinationConfiguration missing")
	} else {
		eq(t, "bucketName", aws.ToString(rc.DestinationConfiguration.S3.BucketName), "my-recordings")
	}
	eq(t, "recordingReconnectWindowSeconds", rc.RecordingReconnectWindowSeconds, int32(0))
	if tc := rc.ThumbnailConfiguration; tc == nil {
		t.Errorf("thumbnailConfiguration missing")
	} else {
		eq(t, "thumbnail recordingMode", tc.RecordingMode, types.RecordingModeInterval)
		eq(t, "thumbnail targetIntervalSeconds", aws.ToInt64(tc.TargetIntervalSeconds), int64(60))
		deepEq(t, "thumbnail storage", tc.Storage, []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageSequential})
	}
	if rcfg := rc.RenditionConfiguration; rcfg == nil {
		t.Errorf("renditionConfiguration missing")
	} else {
		eq(t, "renditionSelection", rcfg.RenditionSelection, types.RenditionConfigurationRenditionSelectionAll)
	}
	deepEq(t, "tags", rc.Tags, map[string]string{"k": "v"})

	waitRecordingActive(t, c, rc.Arn)
	got, err := c.GetRecordingConfiguration(cx, &ivs.GetRecordingConfigurationInput{Arn: rc.Arn})
	must(t, err, "GetRecordingConfiguration")
	eq(t, "get state", got.RecordingConfiguration.State, types.RecordingConfigurationStateActive)
	eq(t, "get name", aws.ToString(got.RecordingConfiguration.Name), "rec")

	custom, err := c.CreateRecordingConfiguration(cx, &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration:        dest("other.bucket-1"),
		RecordingReconnectWindowSeconds: 300,
		RenditionConfiguration: &types.RenditionConfiguration{RenditionSelection: types.RenditionConfigurationRenditionSelectionCustom,
			Renditions: []types.RenditionConfigurationRendition{types.RenditionConfigurationRenditionHd}},
		ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval, TargetIntervalSeconds: aws.Int64(10),
			Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageLatest}, Resolution: types.ThumbnailConfigurationResolutionSd},
	})
	must(t, err, "CreateRecordingConfiguration custom")
	cc := custom.RecordingConfiguration
	eq(t, "custom reconnect window", cc.RecordingReconnectWindowSeconds, int32(300))
	if cc.RenditionConfiguration != nil {
		eq(t, "custom renditionSelection", cc.RenditionConfiguration.RenditionSelection, types.RenditionConfigurationRenditionSelectionCustom)
		deepEq(t, "custom renditions", cc.RenditionConfiguration.Renditions, []types.RenditionConfigurationRendition{types.RenditionConfigurationRenditionHd})
	} else {
		t.Errorf("custom renditionConfiguration missing")
	}
	if cc.ThumbnailConfiguration != nil {
		eq(t, "custom thumbnail interval", aws.ToInt64(cc.ThumbnailConfiguration.TargetIntervalSeconds), int64(10))
		deepEq(t, "custom thumbnail storage", cc.ThumbnailConfiguration.Storage, []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageLatest})
		eq(t, "custom thumbnail resolution", cc.ThumbnailConfiguration.Resolution, types.ThumbnailConfigurationResolutionSd)
	} else {
		t.Errorf("custom thumbnailConfiguration missing")
	}

	waitRecordingActive(t, c, cc.Arn)
	ls, err := c.ListRecordingConfigurations(cx, &ivs.ListRecordingConfigurationsInput{})
	must(t, err, "ListRecordingConfigurations")
	var listed []string
	for _, s := range ls.RecordingConfigurations {
		listed = append(listed, aws.ToString(s.Arn))
		eq(t, "summary state", s.State, types.RecordingConfigurationStateActive)
	}
	if !sameSet(listed, []string{aws.ToString(rc.Arn), aws.ToString(cc.Arn)}) {
		t.Errorf("ListRecordingConfigurations = %v", listed)
	}

	// Invalid input.
	bad := []struct {
		name    string
		in      ivs.CreateRecordingConfigurationInput
		mention string
	}{
		{"CUSTOM without renditions", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("b-ok"),
			RenditionConfiguration: &types.RenditionConfiguration{RenditionSelection: types.RenditionConfigurationRenditionSelectionCustom}}, "rendition"},
		{"bad bucket name", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("Bad_Bucket!")}, "bucketName"},
		{"short bucket name", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("ab")}, "bucketName"},
		{"reconnect window 301", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("b-ok"), RecordingReconnectWindowSeconds: 301}, "recordingReconnectWindowSeconds"},
		{"no s3 destination", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: &types.DestinationConfiguration{}}, "s3"},
		{"bad name", ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("b-ok"), Name: aws.String("no spaces allowed")}, "name"},
	}
	for _, b := range bad {
		_, err := c.CreateRecordingConfiguration(cx, &b.in)
		wantErr[*types.ValidationException](t, err, stValidation, "CreateRecordingConfiguration "+b.name, b.mention)
	}

	// Attach via CreateChannel and UpdateChannel.
	ch1 := createChannel(t, c, &ivs.CreateChannelInput{RecordingConfigurationArn: rc.Arn}).Channel
	eq(t, "channel recordingConfigurationArn", aws.ToString(ch1.RecordingConfigurationArn), aws.ToString(rc.Arn))
	ch2 := createChannel(t, c, nil).Channel
	upc, err := c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch2.Arn, RecordingConfigurationArn: rc.Arn})
	must(t, err, "UpdateChannel attach recording configuration")
	eq(t, "updated recordingConfigurationArn", aws.ToString(upc.Channel.RecordingConfigurationArn), aws.ToString(rc.Arn))
	_, err = c.CreateChannel(cx, &ivs.CreateChannelInput{RecordingConfigurationArn: aws.String(unknownRecordingARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "CreateChannel with an unknown recording configuration")
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch2.Arn, RecordingConfigurationArn: aws.String(unknownRecordingARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "UpdateChannel with an unknown recording configuration")

	_, err = c.DeleteRecordingConfiguration(cx, &ivs.DeleteRecordingConfigurationInput{Arn: rc.Arn})
	wantErr[*types.ConflictException](t, err, stConflict, "DeleteRecordingConfiguration attached")
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch1.Arn, RecordingConfigurationArn: aws.String("")})
	must(t, err, "UpdateChannel detach 1")
	_, err = c.DeleteRecordingConfiguration(cx, &ivs.DeleteRecordingConfigurationInput{Arn: rc.Arn})
	wantErr[*types.ConflictException](t, err, stConflict, "DeleteRecordingConfiguration still attached to one channel")
	_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: ch2.Arn})
	must(t, err, "DeleteChannel 2")
	_, err = c.DeleteRecordingConfiguration(cx, &ivs.DeleteRecordingConfigurationInput{Arn: rc.Arn})
	must(t, err, "DeleteRecordingConfiguration after detach")
	_, err = c.GetRecordingConfiguration(cx, &ivs.GetRecordingConfigurationInput{Arn: rc.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetRecordingConfiguration after delete")
	_, err = c.DeleteRecordingConfiguration(cx, &ivs.DeleteRecordingConfigurationInput{Arn: aws.String(unknownRecordingARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeleteRecordingConfiguration unknown")
	_, err = c.GetRecordingConfiguration(cx, &ivs.GetRecordingConfigurationInput{Arn: aws.String(otherAccount(aws.ToString(cc.Arn)))})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetRecordingConfiguration other account")
}

func TestRecordingConfigurationQuota(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Config: "quotas:\n  recording-configurations: 2\n"})
	c := ivsClient(t, srv)
	cx := ctx(t)
	in := &ivs.CreateRecordingConfigurationInput{DestinationConfiguration: &types.DestinationConfiguration{
		S3: &types.S3DestinationConfiguration{BucketName: aws.String("quota-bucket")}}}
	for i := 1; i <= 2; i++ {
		_, err := c.CreateRecordingConfiguration(cx, in)
		must(t, err, fmt.Sprintf("CreateRecordingConfiguration #%d", i))
	}
	_, err := c.CreateRecordingConfiguration(cx, in)
	wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "3rd CreateRecordingConfiguration with quota 2")
	ls, err := c.ListRecordingConfigurations(cx, &ivs.ListRecordingConfigurationsInput{})
	must(t, err, "ListRecordingConfigurations")
	eq(t, "recording configurations", len(ls.RecordingConfigurations), 2)
}

func TestTags(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	ch := createChannel(t, c, nil)
	kp, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(ecPublicKeyPEM(t, elliptic.P384()))})
	must(t, err, "ImportPlaybackKeyPair")
	pol, err := c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{})
	must(t, err, "CreatePlaybackRestrictionPolicy")
	rc, err := c.CreateRecordingConfiguration(cx, &ivs.CreateRecordingConfigurationInput{DestinationConfiguration: &types.DestinationConfiguration{
		S3: &types.S3DestinationConfiguration{BucketName: aws.String("tag-bucket")}}})
	must(t, err, "CreateRecordingConfiguration")

	resources := map[string]string{
		"channel":                 aws.ToString(ch.Channel.Arn),
		"stream key":              aws.ToString(ch.StreamKey.Arn),
		"playback key pair":       aws.ToString(kp.KeyPair.Arn),
		"restriction policy":      aws.ToString(pol.PlaybackRestrictionPolicy.Arn),
		"recording configuration": aws.ToString(rc.RecordingConfiguration.Arn),
	}
	for kind, arn := range resources {
		t.Run(strings.ReplaceAll(kind, " ", "-"), func(t *testing.T) {
			lt, err := c.ListTagsForResource(cx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			must(t, err, "ListTagsForResource untagged")
			eq(t, "tags before", len(lt.Tags), 0)

			_, err = c.TagResource(cx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"team": "video", "env": "test"}})
			must(t, err, "TagResource")
			_, err = c.TagResource(cx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "prod"}})
			must(t, err, "TagResource overwrite")
			lt, err = c.ListTagsForResource(cx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			must(t, err, "ListTagsForResource")
			deepEq(t, "tags", lt.Tags, map[string]string{"team": "video", "env": "prod"})

			_, err = c.UntagResource(cx, &ivs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"env", "absent"}})
			must(t, err, "UntagResource")
			lt, err = c.ListTagsForResource(cx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			must(t, err, "ListTagsForResource after untag")
			deepEq(t, "tags after untag", lt.Tags, map[string]string{"team": "video"})

			// 1 existing + 50 new = 51 > 50.
			many := map[string]string{}
			for i := 0; i < 50; i++ {
				many[fmt.Sprintf("key-%02d", i)] = "v"
			}
			_, err = c.TagResource(cx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: many})
			wantErr[*types.ValidationException](t, err, stValidation, "TagResource to 51 tags", "tags")
			_, err = c.TagResource(cx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"aws:x": "y"}})
			wantErr[*types.ValidationException](t, err, stValidation, "TagResource aws: key", "aws:")
			lt, err = c.ListTagsForResource(cx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			must(t, err, "ListTagsForResource after rejected tags")
			deepEq(t, "tags after rejected TagResource", lt.Tags, map[string]string{"team": "video"})
		})
	}
	got, err := c.GetChannel(cx, &ivs.GetChannelInput{Arn: ch.Channel.Arn})
	must(t, err, "GetChannel")
	deepEq(t, "channel tags via GetChannel", got.Channel.Tags, map[string]string{"team": "video"})

	for _, arn := range []string{unknownChannelARN, unknownStreamKeyARN, unknownKeyPairARN, unknownPolicyARN, unknownRecordingARN, otherAccount(aws.ToString(ch.Channel.Arn))} {
		_, err := c.TagResource(cx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"a": "b"}})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "TagResource "+arn)
		_, err = c.UntagResource(cx, &ivs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"a"}})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "UntagResource "+arn)
		_, err = c.ListTagsForResource(cx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "ListTagsForResource "+arn)
	}
}

// TestChannelQuotaConcurrent fires 30 CreateChannel calls at once against a
// quota of 10: exactly 10 may win, on every store.
func TestChannelQuotaConcurrent(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, store string) {
		srv := startServer(t, serverOpts{Store: store, Config: "quotas:\n  channels: 10\n"})
		c := ivsClient(t, srv)
		cx := ctx(t)
		const calls = 30
		var wg sync.WaitGroup
		errs := make([]error, calls)
		start := make(chan struct{})
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = c.CreateChannel(cx, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("race-%d", i))})
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, fmt.Sprintf("CreateChannel #%d over quota", i))
		}
		eq(t, "successful CreateChannel calls", ok, 10)
		ls, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
		must(t, err, "ListChannels")
		eq(t, "listed channels", len(ls.Channels), 10)
		_, err = c.CreateChannel(cx, &ivs.CreateChannelInput{})
		wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "CreateChannel at quota")
		_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: ls.Channels[0].Arn})
		must(t, err, "DeleteChannel")
		_, err = c.CreateChannel(cx, &ivs.CreateChannelInput{})
		must(t, err, "CreateChannel after a delete freed a slot")

		// One stream key per channel, under a race.
		ch := ls.Channels[1]
		keys, err := c.ListStreamKeys(cx, &ivs.ListStreamKeysInput{ChannelArn: ch.Arn})
		must(t, err, "ListStreamKeys")
		if len(keys.StreamKeys) != 1 {
			t.Fatalf("channel has %d stream keys", len(keys.StreamKeys))
		}
		_, err = c.DeleteStreamKey(cx, &ivs.DeleteStreamKeyInput{Arn: keys.StreamKeys[0].Arn})
		must(t, err, "DeleteStreamKey")
		errs = concurrently(10, func(int) error {
			_, err := c.CreateStreamKey(cx, &ivs.CreateStreamKeyInput{ChannelArn: ch.Arn})
			return err
		})
		eq(t, "concurrent CreateStreamKey successes", countOK(t, errs, "CreateStreamKey", func(err error) {
			wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "concurrent CreateStreamKey over quota")
		}), 1)
		keys, err = c.ListStreamKeys(cx, &ivs.ListStreamKeysInput{ChannelArn: ch.Arn})
		must(t, err, "ListStreamKeys")
		eq(t, "stream keys after the race", len(keys.StreamKeys), 1)

		// The same public key imported 6 times at once: one wins.
		material := ecPublicKeyPEM(t, elliptic.P384())
		errs = concurrently(6, func(int) error {
			_, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(material)})
			return err
		})
		eq(t, "concurrent imports of one key", countOK(t, errs, "ImportPlaybackKeyPair", func(err error) {
			wantErr[*types.ConflictException](t, err, stConflict, "concurrent duplicate ImportPlaybackKeyPair")
		}), 1)
		// Then 8 different keys at once against the 2 slots left.
		errs = concurrently(8, func(int) error {
			_, err := c.ImportPlaybackKeyPair(cx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(ecPublicKeyPEM(t, elliptic.P384()))})
			return err
		})
		eq(t, "concurrent imports into 2 free slots", countOK(t, errs, "ImportPlaybackKeyPair", func(err error) {
			wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "concurrent ImportPlaybackKeyPair over quota")
		}), 2)
		kps, err := c.ListPlaybackKeyPairs(cx, &ivs.ListPlaybackKeyPairsInput{})
		must(t, err, "ListPlaybackKeyPairs")
		eq(t, "key pairs after the race", len(kps.KeyPairs), 3)
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, "")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t) // its cleanup (drop schema) runs after the server stops
		run(t, dsn)
	})
}

// concurrently runs n calls of f at once and returns their errors.
func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// countOK counts the nil errors and hands every other one to check.
func countOK(t testing.TB, errs []error, what string, check func(error)) int {
	t.Helper()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			check(err)
		}
	}
	return ok
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{RateLimits: true})
	c := ivsClient(t, srv)
	cx := ctx(t)
	ch := createChannel(t, c, nil).Channel

	ok, throttled := 0, 0
	for i := 0; i < 20; i++ {
		_, err := c.GetChannel(cx, &ivs.GetChannelInput{Arn: ch.Arn})
		if err == nil {
			ok++
			continue
		}
		// GetChannel does not declare ThrottlingException in IVS's model,
		// so the SDK reports it as a generic API error with that code.
		if wantCode(t, err, stThrottling, "ThrottlingException", fmt.Sprintf("GetChannel #%d", i)) {
			throttled++
		}
	}
	if ok == 0 || throttled == 0 || ok+throttled != 20 {
		t.Errorf("20 rapid GetChannel calls: %d succeeded, %d throttled; want both", ok, throttled)
	}
	// Other operations have buckets of their own.
	_, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
	must(t, err, "ListChannels while GetChannel is throttled")
}

// TestRateLimitConfig lowers one operation's rate through the config file;
// the others keep their defaults.
func TestRateLimitConfig(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{RateLimits: true, Config: "rate-limits:\n  ListChannels: 1\n"})
	c := ivsClient(t, srv)
	cx := ctx(t)
	_, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
	must(t, err, "first ListChannels")
	_, err = c.ListChannels(cx, &ivs.ListChannelsInput{})
	wantCode(t, err, stThrottling, "ThrottlingException", "second ListChannels at 1 TPS")
	for i := 0; i < 3; i++ {
		_, err = c.ListRecordingConfigurations(cx, &ivs.ListRecordingConfigurationsInput{})
		must(t, err, fmt.Sprintf("ListRecordingConfigurations #%d (default 3 TPS)", i))
	}
}
