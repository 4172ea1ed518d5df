// Package awstest holds helpers for tests that drive openivs with the AWS SDK.
package awstest

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Retryer retries only broken connections, so tests see every error the
// server answers (throttling, 5xx) exactly as it was sent.
//
// Why retry at all: the SDK closes a request body as soon as the response
// arrives, and net/http may still be probing that body for EOF; it then
// closes the connection under the response being read ("use of closed
// network connection", aws/aws-sdk-go-v2#2737). A server on loopback answers
// fast enough to hit this often. The SDK's default retryer retries it; with
// retries off, tests would flake on a client-side race.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
	})
}
