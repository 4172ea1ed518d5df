package config

import (
	"strings"
	"testing"
)

func TestAuditSettings(t *testing.T) {
	cfg, err := Load([]string{"--data-dir", "/srv/ivs"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuditDir != "" || cfg.AuditPath() != "/srv/ivs/audit" || cfg.AuditMaxFileBytes != 64<<20 {
		t.Fatalf("defaults: dir %q path %q max %d", cfg.AuditDir, cfg.AuditPath(), cfg.AuditMaxFileBytes)
	}

	// File < env < flag, as for every setting.
	file := writeFile(t, "audit-dir: /from/file\naudit-max-file-bytes: 1000\n")
	cfg, err = Load([]string{"--config", file}, envMap(nil))
	if err != nil || cfg.AuditPath() != "/from/file" || cfg.AuditMaxFileBytes != 1000 {
		t.Fatalf("file: %q %d %v", cfg.AuditPath(), cfg.AuditMaxFileBytes, err)
	}
	env := envMap(map[string]string{"OPENIVS_AUDIT_DIR": "/from/env", "OPENIVS_AUDIT_MAX_FILE_BYTES": "2000"})
	cfg, err = Load([]string{"--config", file}, env)
	if err != nil || cfg.AuditPath() != "/from/env" || cfg.AuditMaxFileBytes != 2000 {
		t.Fatalf("env: %q %d %v", cfg.AuditPath(), cfg.AuditMaxFileBytes, err)
	}
	cfg, err = Load([]string{"--config", file, "--audit-dir", "off", "--audit-max-file-bytes", "3000"}, env)
	if err != nil || cfg.AuditPath() != "" || cfg.AuditMaxFileBytes != 3000 {
		t.Fatalf("flags: %q %d %v", cfg.AuditPath(), cfg.AuditMaxFileBytes, err)
	}

	for _, bad := range []string{"0", "-1", "64MiB"} {
		if _, err := Load([]string{"--audit-max-file-bytes", bad}, envMap(nil)); err == nil ||
			!strings.Contains(err.Error(), "audit-max-file-bytes") {
			t.Errorf("--audit-max-file-bytes %s: err %v", bad, err)
		}
	}
	c := Default()
	c.AuditMaxFileBytes = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--audit-max-file-bytes") {
		t.Errorf("Validate with 0: %v", err)
	}

	var b strings.Builder
	Usage(&b)
	if !strings.Contains(b.String(), "OPENIVS_AUDIT_DIR, default DATA_DIR/audit") {
		t.Errorf("usage:\n%s", b.String())
	}
}

func TestAuditS3Settings(t *testing.T) {
	env := envMap(map[string]string{"OPENIVS_S3_ACCESS_KEY_ID": "AK", "OPENIVS_S3_SECRET_ACCESS_KEY": "SK"})
	cfg, err := Load([]string{"--audit-s3-bucket", "trail", "--s3-endpoint", "http://127.0.0.1:7070", "--s3-region", "us-east-1"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuditS3Bucket != "trail" || cfg.S3Endpoint != "http://127.0.0.1:7070" || cfg.S3Region != "us-east-1" ||
		cfg.S3AccessKeyID != "AK" || cfg.S3SecretAccessKey != "SK" {
		t.Fatalf("%+v", cfg)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--audit-s3-bucket", "trail"}, nil, "needs --s3-access-key-id"},
		{[]string{"--audit-s3-bucket", "Bad_Bucket", "--s3-access-key-id", "a", "--s3-secret-access-key", "b"}, nil, "not an S3 bucket name"},
		{[]string{"--audit-s3-bucket", "trail", "--audit-dir", "off", "--s3-access-key-id", "a", "--s3-secret-access-key", "b"}, nil, "the audit log is off"},
		{[]string{"--s3-access-key-id", "a"}, nil, "must be given together"},
		{[]string{"--s3-endpoint", "127.0.0.1:7070"}, nil, "--s3-endpoint"},
		{[]string{"--s3-region", "nowhere"}, nil, "--s3-region"},
	} {
		if _, err := Load(c.args, envMap(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}
