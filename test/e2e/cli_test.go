package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAWSCLIQuickstart runs the README's quickstart with the AWS CLI.
func TestAWSCLIQuickstart(t *testing.T) {
	t.Parallel()
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("OPENIVS_NO_AWS_CLI") == "1" {
			t.Skip("\n!!!!!!!! SKIPPED: the AWS CLI (aws) is not on PATH and OPENIVS_NO_AWS_CLI=1. " +
				"The CLI quickstart did NOT run. !!!!!!!!")
		}
		t.Fatalf("the AWS CLI (aws) is not on PATH (%v); install it or set OPENIVS_NO_AWS_CLI=1 to skip", err)
	}
	srv := startServer(t, serverOpts{})
	endpoint := "http://localhost:" + strconv.Itoa(srv.HTTP)
	home := t.TempDir()

	// aws runs one CLI command against srv and decodes its JSON output.
	aws := func(args ...string) map[string]any {
		t.Helper()
		// As the README writes them: aws ivs OP --endpoint-url URL --region REGION ARGS...
		// (JSON is the CLI's default output without a config file).
		full := append([]string{"ivs", args[0], "--endpoint-url", endpoint, "--region", testRegion}, args[1:]...)
		c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(c, awsBin, full...)
		env := []string{
			"AWS_ACCESS_KEY_ID=" + testAccessKeyID,
			"AWS_SECRET_ACCESS_KEY=" + testSecretAccessKey,
			// No AWS_REGION: the README's commands pass --region, which the
			// AWS CLI v1 needs (it reads only AWS_DEFAULT_REGION).
			"AWS_CONFIG_FILE=/dev/null",
			"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_PAGER=",
			"HOME=" + home,
		}
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "OPENIVS_") {
				continue
			}
			env = append(env, kv)
		}
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %s: %v\nstdout: %s\nstderr: %s\nserver log:\n%s", strings.Join(full, " "), err, stdout.String(), stderr.String(), srv.Stderr())
		}
		out := map[string]any{}
		if s := bytes.TrimSpace(stdout.Bytes()); len(s) > 0 {
			if err := json.Unmarshal(s, &out); err != nil {
				t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(full, " "), err, s)
			}
		}
		return out
	}
	str := func(m map[string]any, path ...string) string {
		var cur any = m
		for _, p := range path {
			obj, _ := cur.(map[string]any)
			cur = obj[p]
		}
		s, _ := cur.(string)
		return s
	}

	created := aws("create-channel", "--name", "demo")
	arn := str(created, "channel", "arn")
	key := str(created, "streamKey", "value")
	keyARN := str(created, "streamKey", "arn")
	if !channelARNRe.MatchString(arn) {
		t.Fatalf("create-channel channel.arn %q; output %v", arn, created)
	}
	if !streamKeyRe.MatchString(key) {
		t.Errorf("create-channel streamKey.value %q", key)
	}
	eq(t, "create-channel name", str(created, "channel", "name"), "demo")
	eq(t, "create-channel ingestEndpoint", str(created, "channel", "ingestEndpoint"), "localhost:"+strconv.Itoa(srv.RTMPS))
	eq(t, "create-channel playbackUrl", str(created, "channel", "playbackUrl"),
		"http://localhost:"+strconv.Itoa(srv.HTTP)+"/api/video/v1/us-west-2.123456789012.channel."+strings.TrimPrefix(arn, "arn:aws:ivs:us-west-2:123456789012:channel/")+".m3u8")
	eq(t, "create-channel srt.endpoint", str(created, "channel", "srt", "endpoint"), "localhost:"+strconv.Itoa(srv.SRT))
	if str(created, "channel", "srt", "passphrase") == "" {
		t.Errorf("create-channel srt.passphrase is empty")
	}

	got := aws("get-channel", "--arn", arn)
	eq(t, "get-channel arn", str(got, "channel", "arn"), arn)
	eq(t, "get-channel name", str(got, "channel", "name"), "demo")
	eq(t, "get-channel type", str(got, "channel", "type"), "STANDARD")

	list := aws("list-channels")
	chans, _ := list["channels"].([]any)
	if len(chans) != 1 {
		t.Errorf("list-channels = %v, want one channel", list)
	} else if first, _ := chans[0].(map[string]any); str(first, "arn") != arn {
		t.Errorf("list-channels lists %v, want %s", first, arn)
	}

	sk := aws("get-stream-key", "--arn", keyARN)
	eq(t, "get-stream-key value", str(sk, "streamKey", "value"), key)
	eq(t, "get-stream-key channelArn", str(sk, "streamKey", "channelArn"), arn)

	aws("tag-resource", "--resource-arn", arn, "--tags", "team=video")
	tags := aws("list-tags-for-resource", "--resource-arn", arn)
	deepEq(t, "list-tags-for-resource", tags["tags"], map[string]any{"team": "video"})

	aws("delete-channel", "--arn", arn)
	list = aws("list-channels")
	if chans, _ := list["channels"].([]any); len(chans) != 0 {
		t.Errorf("list-channels after delete-channel = %v", list)
	}
}
