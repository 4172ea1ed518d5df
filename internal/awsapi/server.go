// Package awsapi is the AWS REST-JSON plumbing shared by the IVS, IVS Chat and
// IVS Real-Time APIs: routing by the service model, SigV4 verification, input
// validation against the model, error shapes, request IDs, body limits,
// per-operation throttling and opaque pagination tokens; and what the
// services do alike with their stored resources (ARNs, look-ups confined to
// the caller's account, pagination, the tag operations).
package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Handler runs one operation. It returns the output document (marshalled as
// JSON) or an error; errors that are not *Error become InternalServerException.
type Handler func(ctx context.Context, call *Call) (any, error)

// Service is one AWS API mounted on a Server.
type Service struct {
	// SigningName is the SigV4 service name clients sign with ("ivs", "ivschat").
	SigningName string
	Model       *Model
	Operations  map[string]Handler
	// RateLimits are the sustained requests per second allowed per account
	// and operation; operations without an entry are not throttled.
	RateLimits map[string]float64
	// OwnsARN tells, for the /tags/{resourceArn} routes shared by services
	// with the same signing name, whether an ARN belongs to this service.
	// Nil means every ARN.
	OwnsARN func(arn string) bool
	// ThrottledResource, when set, names the resource a throttled call is
	// about, for services whose ThrottlingException has resourceType and
	// resourceId members (IVS Chat's moderation calls name their room).
	// input is the call's validated input document, nil when the input is
	// invalid; an empty resourceType names nothing.
	ThrottledResource func(op string, input json.RawMessage) (resourceType, resourceID string)
}

// Credentials resolves an access key id to its secret and account.
type Credentials interface {
	Lookup(accessKeyID string) (secret, account string, ok bool)
}

// Options configure a Server.
type Options struct {
	Region       string
	Credentials  Credentials
	MaxBodyBytes int64 // default 1 MiB
	// TokenSecret keys the HMAC of pagination tokens; a random key is used
	// when empty (tokens then do not survive a restart).
	TokenSecret []byte
	// DisableRateLimits turns throttling off (benchmarks, load tests).
	DisableRateLimits bool
	Now               func() time.Time
	Logger            *slog.Logger
	// OnCall, when set, sees every authenticated call after it completes
	// (the audit log hooks in here).
	OnCall func(CallRecord)
}

// CallRecord describes one finished API call.
type CallRecord struct {
	RequestID   string
	Service     string
	Operation   string
	Account     string
	AccessKeyID string
	SourceIP    string
	UserAgent   string
	Time        time.Time
	Status      int
	ErrorCode   string
	Duration    time.Duration

	// API is the endpoint prefix of the service model that served the call
	// ("ivs", "ivschat", "ivsrealtime"): IVS Real-Time signs as "ivs" too.
	API string
	// ErrorMessage is the exception's message when ErrorCode is set.
	ErrorMessage string
	// Input is the validated input document (nil when the call failed
	// before validation); Output is the JSON response body of a successful
	// call (nil for 204 answers). Both may hold secrets: redact before
	// storing them.
	Input  json.RawMessage
	Output []byte
}

// Server serves every mounted service on one http.Handler.
type Server struct {
	opts     Options
	services []*Service
	// signing lists the mounted services' signing names, for SigV4.
	signing []string
	limiter *RateLimiter
	pages   *PageTokens
}

// NewServer returns a Server with no services mounted.
func NewServer(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	secret := opts.TokenSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	return &Server{opts: opts, limiter: NewRateLimiter(), pages: NewPageTokens(secret)}
}

// Mount adds a service. Operation names must be unique per signing name.
func (s *Server) Mount(svc *Service) error {
	if svc.Model == nil {
		return errors.New("awsapi: service without a model")
	}
	for name := range svc.Operations {
		if _, ok := svc.Model.Operations[name]; !ok {
			return fmt.Errorf("awsapi: operation %s is not in the %s model", name, svc.Model.ServiceID)
		}
	}
	s.services = append(s.services, svc)
	s.signing = append(s.signing, svc.SigningName)
	return nil
}

// Call is one authenticated, validated operation call.
type Call struct {
	Operation   string
	Account     string
	AccessKeyID string
	RequestID   string
	Region      string
	// Input is the validated input document: body members plus members bound
	// to the URI and query string, under their model member names.
	Input json.RawMessage

	server *Server
	scope  string
}

// Decode unmarshals the validated input into v.
func (c *Call) Decode(v any) error {
	if err := json.Unmarshal(c.Input, v); err != nil {
		return Errorf("SerializationException", "cannot decode request: %v", err)
	}
	return nil
}

// PageToken returns an opaque token that resumes this listing after cursor.
// filters distinguishes listings of the same operation (filters, parent);
// a token only decodes for the same account, operation and filters.
func (c *Call) PageToken(filters string, cursor int64) string {
	return c.server.pages.Encode(c.scope+"\x00"+filters, cursor)
}

// PageCursor decodes a token made by PageToken for the same listing; an
// empty token is cursor 0.
func (c *Call) PageCursor(filters, token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	cur, err := c.server.pages.Decode(c.scope+"\x00"+filters, token)
	if err != nil {
		const msg = "The nextToken is invalid or belongs to a different request."
		return 0, validationError(msg, []FieldError{{Name: "nextToken", Message: msg}})
	}
	return cur, nil
}

// Allow spends one token of an extra bucket (e.g. PutMetadata per channel).
func (c *Call) Allow(key string, perSecond float64) bool {
	if c.server.opts.DisableRateLimits {
		return true
	}
	return c.server.limiter.Allow(c.Account+"\x00"+key, perSecond, burstFor(perSecond), c.server.opts.Now())
}

func burstFor(perSecond float64) int {
	if perSecond < 1 {
		return 1
	}
	return int(perSecond)
}

// IsAPIRequest tells whether r is addressed to a mounted API: it carries an
// AWS SigV4 Authorization header, or its path names a mounted operation.
func (s *Server) IsAPIRequest(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-") {
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/tags/") {
		return true
	}
	op := strings.TrimPrefix(r.URL.Path, "/")
	for _, svc := range s.services {
		if _, ok := svc.Operations[op]; ok {
			return true
		}
	}
	return false
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ServeHTTP authenticates, routes, validates and runs one call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	rec := CallRecord{RequestID: reqID, Time: start, SourceIP: r.RemoteAddr, UserAgent: r.UserAgent()}
	status, aerr := s.serve(w, r, reqID, &rec)
	rec.Status, rec.Duration = status, s.opts.Now().Sub(start)
	if aerr != nil {
		rec.ErrorCode, rec.ErrorMessage = aerr.Code, aerr.Message
	}
	if s.opts.OnCall != nil && rec.Account != "" {
		s.opts.OnCall(rec)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, reqID string, rec *CallRecord) (int, *Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.writeError(w, nil, Errorf("RequestEntityTooLargeException",
				"Request body exceeds the limit of %d bytes.", s.opts.MaxBodyBytes))
		}
		return s.writeError(w, nil, Errorf("SerializationException", "cannot read request body: %v", err))
	}
	principal, aerr := verifySigV4(r, body, s.opts.Credentials, s.opts.Region, s.signing, s.opts.Now())
	if aerr != nil {
		return s.writeError(w, nil, aerr)
	}
	rec.Account, rec.AccessKeyID = principal.Account, principal.AccessKeyID

	svc, op, pathParams, aerr := s.route(r, principal.Service)
	if aerr != nil {
		return s.writeError(w, s.modelFor(principal.Service), aerr)
	}
	rec.Service, rec.Operation, rec.API = principal.Service, op.Name, svc.Model.Metadata.EndpointPfx
	handler := svc.Operations[op.Name]

	if tps, ok := svc.RateLimits[op.Name]; ok && !s.opts.DisableRateLimits {
		key := principal.Account + "\x00" + principal.Service + "\x00" + op.Name
		if !s.limiter.Allow(key, tps, burstFor(tps), s.opts.Now()) {
			e := throttled(op.Name, tps)
			if svc.ThrottledResource != nil {
				input, _ := svc.Model.BuildInput(op, body, pathParams, r.URL.Query())
				if typ, id := svc.ThrottledResource(op.Name, input); typ != "" {
					e.Fields["resourceType"], e.Fields["resourceId"] = typ, id
				}
			}
			return s.writeError(w, svc.Model, e)
		}
	}

	input, aerr := svc.Model.BuildInput(op, body, pathParams, r.URL.Query())
	if aerr != nil {
		return s.writeError(w, svc.Model, aerr)
	}
	rec.Input = input
	call := &Call{
		Operation: op.Name, Account: principal.Account, AccessKeyID: principal.AccessKeyID,
		RequestID: reqID, Region: s.opts.Region, Input: input, server: s,
		scope: principal.Account + "\x00" + principal.Service + "\x00" + op.Name,
	}
	out, err := handler(r.Context(), call)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			s.opts.Logger.Error("operation failed", "op", op.Name, "requestId", reqID, "err", err)
			ae = Errorf(CodeInternal, "Internal server error (request %s).", reqID)
		}
		return s.writeError(w, svc.Model, ae)
	}
	status := op.HTTP.ResponseCode
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return status, nil
	}
	if out == nil {
		out = struct{}{}
	}
	buf, err := json.Marshal(out)
	if err != nil {
		s.opts.Logger.Error("encoding response", "op", op.Name, "err", err)
		return s.writeError(w, svc.Model, Errorf(CodeInternal, "Internal server error (request %s).", reqID))
	}
	rec.Output = buf
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf)
	return status, nil
}

// throttled is the ThrottlingException of an operation over its rate: the
// limit member (IVS Chat's; IVS's model has none, so it is dropped there)
// is the rate in requests per second.
func throttled(op string, perSecond float64) *Error {
	return &Error{
		Code: CodeThrottling, Message: fmt.Sprintf("Rate exceeded for %s.", op),
		Fields: map[string]any{"limit": int(math.Round(perSecond))},
	}
}

// route finds the service and operation for the request. Services are
// matched by the signing name of the credential scope, then by the model's
// HTTP bindings (URI template, resource ownership, method).
func (s *Server) route(r *http.Request, signingName string) (*Service, *Operation, map[string]string, *Error) {
	var methodMismatch bool
	for _, svc := range s.services {
		if svc.SigningName != signingName {
			continue
		}
		for name := range svc.Operations {
			op := svc.Model.Operations[name]
			params, ok := op.matchPath(r.URL.EscapedPath())
			if !ok {
				continue
			}
			// Ownership before the method: a /tags/{resourceArn} path that
			// names another service's resource is none of this service's
			// routes, whatever its method.
			if arn, bound := params["resourceArn"]; bound && svc.OwnsARN != nil && !svc.OwnsARN(arn) {
				continue
			}
			if !strings.EqualFold(op.HTTP.Method, r.Method) {
				methodMismatch = true
				continue
			}
			return svc, op, params, nil
		}
	}
	if methodMismatch {
		return nil, nil, nil, Errorf("MethodNotAllowedException", "Method %s is not allowed on %s.", r.Method, r.URL.Path)
	}
	if strings.HasPrefix(r.URL.Path, "/tags/") {
		return nil, nil, nil, NotFound("Resource %s not found.", strings.TrimPrefix(r.URL.Path, "/tags/"))
	}
	return nil, nil, nil, Errorf("UnknownOperationException", "Unknown operation %s.", r.URL.Path)
}

// modelFor returns the model of the first service mounted under a signing
// name (nil when there is none), for errors raised before an operation is
// known.
func (s *Server) modelFor(signingName string) *Model {
	for _, svc := range s.services {
		if svc.SigningName == signingName {
			return svc.Model
		}
	}
	return nil
}

// writeError writes e in the AWS REST-JSON error shape: the code in
// x-amzn-ErrorType, a JSON body with "message" and the exception's own
// members, and the status from the model. Where the model defines the
// exception, only the Fields it declares as members are sent. It returns
// the status and e.
func (s *Server) writeError(w http.ResponseWriter, m *Model, e *Error) (int, *Error) {
	status := e.Status
	body := map[string]any{"message": e.Message}
	var members map[string]*ShapeRef // nil: send every field
	if m != nil {
		if shape, ok := m.Shapes[e.Code]; ok && shape.Exception {
			if status == 0 {
				status = shape.Error.HTTPStatusCode
			}
			members = shape.Members
			// IVS names its message member exceptionMessage.
			if _, ok := shape.Members["exceptionMessage"]; ok {
				body["exceptionMessage"] = e.Message
			}
		}
	}
	if status == 0 {
		status = statusForCode[e.Code]
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	for k, v := range e.Fields {
		if _, declared := members[k]; declared || members == nil {
			body[k] = v
		}
	}
	buf, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.Code)
	w.WriteHeader(status)
	_, _ = w.Write(buf)
	return status, e
}

// unescapePathParam decodes one URI label value.
func unescapePathParam(v string) (string, bool) {
	u, err := url.PathUnescape(v)
	return u, err == nil
}
