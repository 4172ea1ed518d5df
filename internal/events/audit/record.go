package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
)

// CloudTrail's constants for an API call recorded as a management event.
const (
	EventVersion  = "1.08"
	EventType     = "AwsApiCall"
	EventCategory = "Management"
)

// Record is one audit entry in CloudTrail's event shape, fields in
// CloudTrail's order.
type Record struct {
	EventVersion    string       `json:"eventVersion"`
	UserIdentity    UserIdentity `json:"userIdentity"`
	EventTime       string       `json:"eventTime"`
	EventSource     string       `json:"eventSource"`
	EventName       string       `json:"eventName"`
	AWSRegion       string       `json:"awsRegion"`
	SourceIPAddress string       `json:"sourceIPAddress"`
	UserAgent       string       `json:"userAgent"`
	ErrorCode       string       `json:"errorCode,omitempty"`
	ErrorMessage    string       `json:"errorMessage,omitempty"`
	// RequestParameters and ResponseElements are redacted JSON documents
	// or null.
	RequestParameters  json.RawMessage `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
}

// UserIdentity is who made the call. Root credentials are the only ones
// today; IAM users and roles add their own types when they come.
type UserIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
}

// ReadOnly tells whether an operation only reads (CloudTrail's readOnly):
// the Get*, List* and BatchGet* operations of the IVS APIs.
func ReadOnly(operation string) bool {
	for _, prefix := range []string{"Get", "List", "BatchGet"} {
		if rest, ok := strings.CutPrefix(operation, prefix); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			return true
		}
	}
	return false
}

// EventSource is the CloudTrail eventSource of an API by its endpoint
// prefix (ivs, ivschat, ivsrealtime).
func EventSource(api string) string {
	if api == "" {
		api = "ivs"
	}
	return api + ".amazonaws.com"
}

// NewRecord builds the redacted audit record of one call. region is the
// node's region; red redacts secrets out of the documents.
func NewRecord(rec awsapi.CallRecord, region string, red *Redactor) Record {
	api := rec.API
	if api == "" {
		// The call failed before routing; its credential scope still names
		// the service it was signed for.
		api = rec.Service
	}
	readOnly := ReadOnly(rec.Operation)
	r := Record{
		EventVersion: EventVersion,
		UserIdentity: UserIdentity{
			Type: "Root", PrincipalID: rec.Account, ARN: "arn:aws:iam::" + rec.Account + ":root",
			AccountID: rec.Account, AccessKeyID: rec.AccessKeyID,
		},
		EventTime:          rec.Time.UTC().Format(time.RFC3339),
		EventSource:        EventSource(api),
		EventName:          rec.Operation,
		AWSRegion:          region,
		SourceIPAddress:    sourceIP(rec.SourceIP),
		UserAgent:          rec.UserAgent,
		ErrorCode:          rec.ErrorCode,
		ErrorMessage:       rec.ErrorMessage,
		RequestParameters:  red.Document(api, rec.Operation, Input, rec.Input),
		RequestID:          rec.RequestID,
		EventID:            newUUID(),
		ReadOnly:           readOnly,
		EventType:          EventType,
		ManagementEvent:    true,
		RecipientAccountID: rec.Account,
		EventCategory:      EventCategory,
	}
	// CloudTrail leaves the response out of read-only calls (it would copy
	// every listing) and out of failures.
	if !readOnly && rec.ErrorCode == "" {
		r.ResponseElements = red.Document(api, rec.Operation, Output, rec.Output)
	}
	if r.RequestParameters == nil {
		r.RequestParameters = null
	}
	if r.ResponseElements == nil {
		r.ResponseElements = null
	}
	return r
}

var null = json.RawMessage("null")

// Marshal encodes r as one JSON line (with the newline).
func (r Record) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sourceIP is the host part of a remote address ("10.0.0.1:5123" →
// "10.0.0.1", "[::1]:80" → "::1").
func sourceIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
