package awsapi

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

//go:embed models/*.json
var modelFiles embed.FS

// Model is an AWS service model (the botocore JSON form), used to route
// operations and validate their input.
type Model struct {
	ServiceID  string
	Metadata   ModelMetadata         `json:"metadata"`
	Operations map[string]*Operation `json:"operations"`
	Shapes     map[string]*Shape     `json:"shapes"`
}

// ModelMetadata is the model's service metadata.
type ModelMetadata struct {
	ServiceID   string `json:"serviceId"`
	SigningName string `json:"signingName"`
	EndpointPfx string `json:"endpointPrefix"`
}

// Operation is one API operation and its HTTP binding.
type Operation struct {
	Name string `json:"name"`
	HTTP struct {
		Method       string `json:"method"`
		RequestURI   string `json:"requestUri"`
		ResponseCode int    `json:"responseCode"`
	} `json:"http"`
	Input  *ShapeRef  `json:"input"`
	Output *ShapeRef  `json:"output"`
	Errors []ShapeRef `json:"errors"`

	segments []string // RequestURI split on "/", labels kept as "{name}"
}

// ShapeRef points at a shape, with member-level binding details.
type ShapeRef struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
}

// Shape is one model shape.
type Shape struct {
	Type      string               `json:"type"`
	Required  []string             `json:"required"`
	Members   map[string]*ShapeRef `json:"members"`
	Member    *ShapeRef            `json:"member"`
	Key       *ShapeRef            `json:"key"`
	Value     *ShapeRef            `json:"value"`
	Enum      []string             `json:"enum"`
	Pattern   string               `json:"pattern"`
	Min       *float64             `json:"min"`
	Max       *float64             `json:"max"`
	Sensitive bool                 `json:"sensitive"`
	Exception bool                 `json:"exception"`
	Error     struct {
		HTTPStatusCode int `json:"httpStatusCode"`
	} `json:"error"`

	pattern *regexp.Regexp
}

// LoadModel loads an embedded model by file name: "ivs", "ivschat", "ivsrealtime".
func LoadModel(name string) (*Model, error) {
	raw, err := modelFiles.ReadFile("models/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("awsapi: no model %q: %w", name, err)
	}
	var m Model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("awsapi: model %q: %w", name, err)
	}
	m.ServiceID = m.Metadata.ServiceID
	for _, op := range m.Operations {
		path, _, _ := strings.Cut(op.HTTP.RequestURI, "?")
		op.segments = strings.Split(strings.TrimPrefix(path, "/"), "/")
	}
	for name, s := range m.Shapes {
		if s.Pattern == "" {
			continue
		}
		// Smithy patterns are unanchored; the services match the whole value.
		re, err := regexp.Compile(`^(?s:` + s.Pattern + `)$`)
		if err != nil {
			return nil, fmt.Errorf("awsapi: model %q shape %s: pattern: %w", m.ServiceID, name, err)
		}
		s.pattern = re
	}
	return &m, nil
}

// matchPath matches an escaped request path against the operation's URI
// template and returns the decoded labels.
func (op *Operation) matchPath(escapedPath string) (map[string]string, bool) {
	segs := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	if len(segs) != len(op.segments) {
		return nil, false
	}
	var params map[string]string
	for i, tmpl := range op.segments {
		if strings.HasPrefix(tmpl, "{") && strings.HasSuffix(tmpl, "}") {
			v, ok := unescapePathParam(segs[i])
			if !ok || v == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.Trim(tmpl, "{}+")] = v
			continue
		}
		if tmpl != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// BuildInput assembles the operation's input document from the JSON body and
// the members bound to the URI and query string, and validates it against
// the input shape. The result is the document as JSON.
func (m *Model) BuildInput(op *Operation, body []byte, pathParams map[string]string, query url.Values) (json.RawMessage, *Error) {
	doc := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, Errorf("SerializationException", "Request body is not valid JSON: %v", err)
		}
		if dec.More() {
			return nil, Errorf("SerializationException", "Request body has data after the JSON document.")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, Errorf("SerializationException", "Request body must be a JSON object.")
		}
		doc = obj
	}
	if op.Input == nil {
		return json.RawMessage("{}"), nil
	}
	input := m.Shapes[op.Input.Shape]
	for name, ref := range input.Members {
		switch ref.Location {
		case "uri":
			delete(doc, name)
			if v, ok := pathParams[ref.LocationName]; ok {
				doc[name] = v
			}
		case "querystring":
			delete(doc, name)
			vals, ok := query[ref.LocationName]
			if !ok {
				continue
			}
			if m.Shapes[ref.Shape].Type == "list" {
				list := make([]any, len(vals))
				for i, v := range vals {
					list[i] = v
				}
				doc[name] = list
			} else {
				doc[name] = queryScalar(m.Shapes[ref.Shape], vals[0])
			}
		case "header", "headers":
			delete(doc, name) // no IVS input binds headers
		}
	}
	var errs []violation
	m.validate(op.Input.Shape, doc, "", &errs)
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].text() < errs[j].text() })
		texts := make([]string, len(errs))
		fields := make([]FieldError, len(errs))
		for i, v := range errs {
			texts[i] = v.text()
			fields[i] = FieldError{Name: v.field, Message: v.constraint}
		}
		noun := "errors"
		if len(errs) == 1 {
			noun = "error"
		}
		return nil, validationError(fmt.Sprintf("%d validation %s detected: %s", len(errs), noun, strings.Join(texts, "; ")), fields)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, Errorf("SerializationException", "cannot encode input: %v", err)
	}
	return out, nil
}

// queryScalar converts a query-string value to the JSON type its shape needs.
func queryScalar(s *Shape, v string) any {
	switch s.Type {
	case "integer", "long":
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return json.Number(v)
		}
	case "boolean":
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}

// violation is one failed constraint of an input member.
type violation struct {
	value      string // the rejected value, quoted ("null", "'***'" for secrets)
	field      string // the member's path: "name", "tags.key", "list.2"
	constraint string // "Member must ..."
}

// text is the AWS wording: "Value '…' at 'path' failed to satisfy constraint: …".
func (v violation) text() string {
	return fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", v.value, v.field, v.constraint)
}

// nullMember is the violation of a required member or list item left null.
func nullMember(path string) violation {
	return violation{value: "null", field: displayPath(path), constraint: "Member must not be null"}
}

// validate checks v against shape name, appending what it breaks to errs.
func (m *Model) validate(name string, v any, path string, errs *[]violation) {
	s := m.Shapes[name]
	if s == nil || v == nil {
		return
	}
	fail := func(constraint string) {
		*errs = append(*errs, violation{value: quoteValue(v, s.Sensitive), field: displayPath(path), constraint: constraint})
	}
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("Member must be a structure")
			return
		}
		for _, req := range s.Required {
			if val, ok := obj[req]; !ok || val == nil {
				*errs = append(*errs, nullMember(join(path, req)))
			}
		}
		for key, val := range obj {
			ref, ok := s.Members[key]
			if !ok {
				continue // unknown members are ignored, as AWS services do
			}
			m.validate(ref.Shape, val, join(path, key), errs)
		}
	case "list":
		list, ok := v.([]any)
		if !ok {
			fail("Member must be a list")
			return
		}
		if s.Min != nil && float64(len(list)) < *s.Min {
			fail(fmt.Sprintf("Member must have length greater than or equal to %d", int(*s.Min)))
		}
		if s.Max != nil && float64(len(list)) > *s.Max {
			fail(fmt.Sprintf("Member must have length less than or equal to %d", int(*s.Max)))
		}
		for i, item := range list {
			if item == nil {
				*errs = append(*errs, nullMember(fmt.Sprintf("%s.%d", path, i+1)))
				continue
			}
			m.validate(s.Member.Shape, item, fmt.Sprintf("%s.%d", path, i+1), errs)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("Member must be a map")
			return
		}
		if s.Min != nil && float64(len(obj)) < *s.Min {
			fail(fmt.Sprintf("Member must have length greater than or equal to %d", int(*s.Min)))
		}
		if s.Max != nil && float64(len(obj)) > *s.Max {
			fail(fmt.Sprintf("Member must have length less than or equal to %d", int(*s.Max)))
		}
		for key, val := range obj {
			m.validate(s.Key.Shape, key, path+".key", errs)
			if val == nil {
				*errs = append(*errs, nullMember(path+".value"))
				continue
			}
			m.validate(s.Value.Shape, val, path+".value", errs)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("Member must be a string")
			return
		}
		if !utf8.ValidString(str) {
			fail("Member must be valid UTF-8")
			return
		}
		n := float64(utf8.RuneCountInString(str))
		if s.Min != nil && n < *s.Min {
			fail(fmt.Sprintf("Member must have length greater than or equal to %d", int(*s.Min)))
		}
		if s.Max != nil && n > *s.Max {
			fail(fmt.Sprintf("Member must have length less than or equal to %d", int(*s.Max)))
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			fail("Member must satisfy enum value set: [" + strings.Join(s.Enum, ", ") + "]")
		}
		if s.pattern != nil && !s.pattern.MatchString(str) {
			fail("Member must satisfy regular expression pattern: " + s.Pattern)
		}
	case "integer", "long":
		num, ok := v.(json.Number)
		if !ok {
			fail("Member must be a number")
			return
		}
		i, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || (s.Type == "integer" && (i > math.MaxInt32 || i < math.MinInt32)) {
			fail("Member must be an integer")
			return
		}
		if s.Min != nil && float64(i) < *s.Min {
			fail(fmt.Sprintf("Member must have value greater than or equal to %d", int64(*s.Min)))
		}
		if s.Max != nil && float64(i) > *s.Max {
			fail(fmt.Sprintf("Member must have value less than or equal to %d", int64(*s.Max)))
		}
	case "float", "double":
		if _, ok := v.(json.Number); !ok {
			fail("Member must be a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("Member must be a boolean")
		}
	case "timestamp":
		switch t := v.(type) {
		case json.Number:
		case string:
			if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
				fail("Member must be a timestamp")
			}
		default:
			fail("Member must be a timestamp")
		}
	case "blob":
		str, ok := v.(string)
		if !ok {
			fail("Member must be a base64-encoded string")
			return
		}
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			fail("Member must be a base64-encoded string")
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(p string) string { return strings.TrimPrefix(p, ".") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteValue renders a rejected value for an error message; sensitive
// values (stream keys, metadata) are never echoed.
func quoteValue(v any, sensitive bool) string {
	if sensitive {
		return "'***'"
	}
	s, ok := renderValue(v)
	if !ok {
		return "of the wrong type"
	}
	if len(s) > 256 {
		s = s[:256] + "…"
	}
	return "'" + s + "'"
}

// renderValue writes a JSON value the way AWS's (Java) error messages do:
// lists as [a, b], maps as {k=v} with sorted keys.
func renderValue(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := renderValue(e)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return "[" + strings.Join(parts, ", ") + "]", true
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(t))
		for _, k := range keys {
			s, ok := renderValue(t[k])
			if !ok {
				return "", false
			}
			parts = append(parts, k+"="+s)
		}
		return "{" + strings.Join(parts, ", ") + "}", true
	}
	return "", false
}
