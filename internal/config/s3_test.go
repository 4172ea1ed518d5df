package config

import (
	"strings"
	"testing"
)

// TestS3StoreNeedsCredentials: naming an S3 store without credentials
// would silently record to local disk instead.
func TestS3StoreNeedsCredentials(t *testing.T) {
	for _, args := range [][]string{
		{"--s3-endpoint", "http://127.0.0.1:7070"},
		{"--s3-region", "us-east-1"},
	} {
		if _, err := Load(args, envMap(nil)); err == nil || !strings.Contains(err.Error(), "needs --s3-access-key-id and --s3-secret-access-key") {
			t.Errorf("%v: %v", args, err)
		}
	}
	cfg, err := Load([]string{"--s3-endpoint", "http://127.0.0.1:7070", "--s3-access-key-id", "AK"},
		envMap(map[string]string{"OPENIVS_S3_SECRET_ACCESS_KEY": "SK"}))
	if err != nil || cfg.S3AccessKeyID != "AK" || cfg.S3SecretAccessKey != "SK" {
		t.Fatalf("%+v, %v", cfg, err)
	}
}
