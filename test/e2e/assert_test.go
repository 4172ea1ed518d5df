package e2e

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// wantErr checks that err is the SDK's typed error T, answered with HTTP
// status (0: not checked), and that its message contains every one of
// mentions (case-insensitively). It returns the typed error, or nil after
// reporting the mismatch.
func wantErr[T error](t testing.TB, err error, status int, what string, mentions ...string) T {
	t.Helper()
	var target T
	if err == nil {
		t.Errorf("%s: succeeded, want %T", what, target)
		return target
	}
	if !errors.As(err, &target) {
		t.Errorf("%s: error %v (%T), want %T", what, err, err, target)
		return target
	}
	if status != 0 {
		if got := httpStatus(err); got != status {
			t.Errorf("%s: HTTP status %d, want %d (%v)", what, got, status, err)
		}
	}
	msg := strings.ToLower(errMessage(err))
	for _, m := range mentions {
		if !strings.Contains(msg, strings.ToLower(m)) {
			t.Errorf("%s: message %q does not mention %q", what, errMessage(err), m)
		}
	}
	return target
}

// httpStatus is the status code of the response behind an SDK error (0 if none).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// errMessage is the message the server sent. IVS's exceptions carry it in
// their exceptionMessage member, which the SDK keeps in ExceptionMessage
// (their ErrorMessage() is then empty).
func errMessage(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	if m := ae.ErrorMessage(); m != "" {
		return m
	}
	v := reflect.ValueOf(ae)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("ExceptionMessage"); f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() {
			if s, ok := f.Elem().Interface().(string); ok {
				return s
			}
		}
	}
	return ""
}

// wantCode checks the error code and status of an error the operation's
// model does not declare (the SDK then returns a generic API error).
func wantCode(t testing.TB, err error, status int, code, what string) bool {
	t.Helper()
	var ae smithy.APIError
	if err == nil {
		t.Errorf("%s: succeeded, want %s", what, code)
		return false
	}
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("%s: error %v, want %s", what, err, code)
		return false
	}
	if got := httpStatus(err); got != status {
		t.Errorf("%s: HTTP status %d, want %d (%v)", what, got, status, err)
		return false
	}
	return true
}

// must fails the test when err is not nil.
func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eq[V comparable](t testing.TB, what string, got, want V) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func deepEq(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return reflect.DeepEqual(x, y)
}
