package audit

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/openivs/openivs/internal/awsapi"
)

// Hidden replaces a secret value in a record, as CloudTrail marks it.
const Hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"

// Direction says which document of an operation is redacted.
type Direction int

// The two documents of a call.
const (
	Input Direction = iota
	Output
)

// Redactor takes secrets out of request and response documents. Two rules
// apply, so that a secret is hidden if either one catches it:
//
//   - the service models: every value whose shape is marked sensitive
//     (IVS stream key values, SRT passphrases, PutMetadata payloads; Chat
//     tokens, user IDs and token attributes; Real-Time participant tokens
//     and ingest stream keys) — so a new sensitive member is hidden as soon
//     as the model has it;
//   - member names, anywhere in the document and whatever the model says:
//     "token", anything naming a passphrase, password, secret or private
//     key, a "streamKey" that is a string, and "value" anywhere inside a
//     stream key object ("streamKey", "streamKeys[]").
//
// Public key material (ImportPlaybackKeyPair, ImportPublicKey) is not secret
// and stays.
type Redactor struct {
	// models by endpoint prefix: ivs, ivschat, ivsrealtime.
	models map[string]*awsapi.Model
}

// NewRedactor loads the IVS, IVS Chat and IVS Real-Time models.
func NewRedactor() (*Redactor, error) {
	r := &Redactor{models: map[string]*awsapi.Model{}}
	for _, name := range []string{"ivs", "ivschat", "ivsrealtime"} {
		m, err := awsapi.LoadModel(name)
		if err != nil {
			return nil, err
		}
		r.models[m.Metadata.EndpointPfx] = m
	}
	return r, nil
}

// Document returns the redacted form of an operation's input or output
// document, or nil when there is nothing to record (no document, an empty
// object, or a document that is not JSON — never the raw text).
func (r *Redactor) Document(api, operation string, dir Direction, raw []byte) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers pass through exactly
	var doc any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil
	}
	if obj, ok := doc.(map[string]any); ok && len(obj) == 0 {
		return nil
	}
	var m *awsapi.Model
	var shape *awsapi.Shape
	if r != nil {
		m = r.models[api]
	}
	if m != nil {
		if op := m.Operations[operation]; op != nil {
			ref := op.Input
			if dir == Output {
				ref = op.Output
			}
			if ref != nil {
				shape = m.Shapes[ref.Shape]
			}
		}
	}
	doc = redact(m, shape, doc, false)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
}

// redact walks v along shape (nil when the model does not know the value)
// and replaces secrets in place. inStreamKey is set under a stream key
// object, where "value" is the key itself.
func redact(m *awsapi.Model, shape *awsapi.Shape, v any, inStreamKey bool) any {
	if v == nil {
		return nil
	}
	if shape != nil && shape.Sensitive {
		return Hidden
	}
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if val == nil {
				continue
			}
			if secretByName(k, val, inStreamKey) {
				t[k] = Hidden
				continue
			}
			var sub *awsapi.Shape
			if shape != nil && m != nil {
				switch shape.Type {
				case "structure":
					sub = memberShape(m, shape, k)
				case "map":
					if shape.Value != nil {
						sub = m.Shapes[shape.Value.Shape]
					}
				}
			}
			t[k] = redact(m, sub, val, inStreamKey || k == "streamKey" || k == "streamKeys")
		}
	case []any:
		var sub *awsapi.Shape
		if shape != nil && m != nil && shape.Type == "list" && shape.Member != nil {
			sub = m.Shapes[shape.Member.Shape]
		}
		for i := range t {
			t[i] = redact(m, sub, t[i], inStreamKey)
		}
	}
	return v
}

func memberShape(m *awsapi.Model, s *awsapi.Shape, name string) *awsapi.Shape {
	if ref, ok := s.Members[name]; ok {
		return m.Shapes[ref.Shape]
	}
	for _, ref := range s.Members {
		if ref.LocationName == name && ref.Location == "" {
			return m.Shapes[ref.Shape]
		}
	}
	return nil
}

// secretByName is the name rule of Redactor.
func secretByName(key string, val any, inStreamKey bool) bool {
	if inStreamKey && key == "value" {
		return true
	}
	if _, isString := val.(string); isString && key == "streamKey" {
		return true // IVS Real-Time ingest configurations carry the key as a string
	}
	k := strings.ToLower(key)
	if k == "token" {
		return true
	}
	for _, word := range []string{"passphrase", "password", "secret", "privatekey"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}
