package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Pattern is an EventBridge event pattern: it selects events by their
// fields the way an EventBridge rule does, so the rules IVS users already
// wrote (on source, detail-type and detail.*) work on openivs sinks.
//
// Supported: nested objects, arrays of literal values (string, number,
// boolean, null), and the content filters prefix, suffix, anything-but
// (a value, a list, or a prefix/suffix), exists, numeric (=, <, <=, >, >=,
// up to two comparisons), equals-ignore-case and wildcard.
type Pattern struct {
	fields map[string]*fieldPattern
}

type fieldPattern struct {
	nested   *Pattern  // the value is an object pattern
	matchers []matcher // the value is a list of alternatives
}

type matcher func(v any, present bool) bool

// ParsePattern reads a pattern from JSON. An empty or null pattern is nil
// and matches everything.
func ParsePattern(raw []byte) (*Pattern, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	if dec.More() {
		return nil, errors.New("event pattern: trailing data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("event pattern: must be a JSON object")
	}
	return parseObject(obj, "")
}

// PatternFromValue builds a pattern from an already decoded value (a YAML
// mapping in the config file).
func PatternFromValue(v any) (*Pattern, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	return ParsePattern(raw)
}

func parseObject(obj map[string]any, at string) (*Pattern, error) {
	if len(obj) == 0 {
		return nil, fmt.Errorf("event pattern%s: empty object", where(at))
	}
	p := &Pattern{fields: make(map[string]*fieldPattern, len(obj))}
	for key, v := range obj {
		name := key
		if at != "" {
			name = at + "." + key
		}
		switch v := v.(type) {
		case map[string]any:
			nested, err := parseObject(v, name)
			if err != nil {
				return nil, err
			}
			p.fields[key] = &fieldPattern{nested: nested}
		case []any:
			if len(v) == 0 {
				return nil, fmt.Errorf("event pattern%s: empty list matches nothing", where(name))
			}
			fp := &fieldPattern{}
			for _, alt := range v {
				m, err := parseMatcher(alt, name)
				if err != nil {
					return nil, err
				}
				fp.matchers = append(fp.matchers, m)
			}
			p.fields[key] = fp
		default:
			return nil, fmt.Errorf("event pattern%s: a value must be a list of alternatives or an object", where(name))
		}
	}
	return p, nil
}

func where(at string) string {
	if at == "" {
		return ""
	}
	return " at " + at
}

func parseMatcher(alt any, at string) (matcher, error) {
	switch a := alt.(type) {
	case nil, string, bool, json.Number:
		return literalMatcher(a), nil
	case map[string]any:
		if len(a) != 1 {
			return nil, fmt.Errorf("event pattern at %s: a content filter has exactly one key", at)
		}
		for op, arg := range a {
			return parseFilter(op, arg, at)
		}
	}
	return nil, fmt.Errorf("event pattern at %s: unsupported value %v", at, alt)
}

func literalMatcher(want any) matcher {
	return func(v any, present bool) bool { return present && equalLiteral(v, want) }
}

func equalLiteral(v, want any) bool {
	switch w := want.(type) {
	case json.Number:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		a, err1 := n.Float64()
		b, err2 := w.Float64()
		return err1 == nil && err2 == nil && a == b
	default:
		return v == want
	}
}

func parseFilter(op string, arg any, at string) (matcher, error) {
	bad := func(format string, a ...any) (matcher, error) {
		return nil, fmt.Errorf("event pattern at %s: %s: %s", at, op, fmt.Sprintf(format, a...))
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case", "wildcard":
		s, ok := arg.(string)
		if !ok {
			return bad("needs a string")
		}
		return stringFilter(op, s), nil
	case "exists":
		want, ok := arg.(bool)
		if !ok {
			return bad("needs true or false")
		}
		return func(_ any, present bool) bool { return present == want }, nil
	case "anything-but":
		var inner []matcher
		switch a := arg.(type) {
		case []any:
			for _, x := range a {
				switch x.(type) {
				case string, json.Number, bool, nil:
					inner = append(inner, literalMatcher(x))
				default:
					return bad("a list may hold only values")
				}
			}
		case map[string]any:
			if len(a) != 1 {
				return bad("takes one prefix or suffix")
			}
			for k, s := range a {
				str, ok := s.(string)
				if (k != "prefix" && k != "suffix") || !ok {
					return bad("takes a value, a list, or a prefix or suffix string")
				}
				inner = append(inner, stringFilter(k, str))
			}
		case string, json.Number, bool, nil:
			inner = append(inner, literalMatcher(a))
		default:
			return bad("unsupported argument")
		}
		return func(v any, present bool) bool {
			if !present {
				return false
			}
			for _, m := range inner {
				if m(v, true) {
					return false
				}
			}
			return true
		}, nil
	case "numeric":
		list, ok := arg.([]any)
		if !ok || (len(list) != 2 && len(list) != 4) {
			return bad("needs [op, number] or [op, number, op, number]")
		}
		type cmp struct {
			op string
			n  float64
		}
		var cmps []cmp
		for i := 0; i < len(list); i += 2 {
			o, ok1 := list[i].(string)
			num, ok2 := list[i+1].(json.Number)
			if !ok1 || !ok2 {
				return bad("needs [op, number] pairs")
			}
			f, err := num.Float64()
			if err != nil {
				return bad("%v", err)
			}
			switch o {
			case "=", "<", "<=", ">", ">=":
			default:
				return bad("unknown comparison %q", o)
			}
			cmps = append(cmps, cmp{o, f})
		}
		return func(v any, present bool) bool {
			n, ok := v.(json.Number)
			if !present || !ok {
				return false
			}
			f, err := n.Float64()
			if err != nil {
				return false
			}
			for _, c := range cmps {
				var hold bool
				switch c.op {
				case "=":
					hold = f == c.n
				case "<":
					hold = f < c.n
				case "<=":
					hold = f <= c.n
				case ">":
					hold = f > c.n
				case ">=":
					hold = f >= c.n
				}
				if !hold {
					return false
				}
			}
			return true
		}, nil
	}
	return bad("unknown content filter")
}

func stringFilter(op, s string) matcher {
	return func(v any, present bool) bool {
		str, ok := v.(string)
		if !present || !ok {
			return false
		}
		switch op {
		case "prefix":
			return strings.HasPrefix(str, s)
		case "suffix":
			return strings.HasSuffix(str, s)
		case "equals-ignore-case":
			return strings.EqualFold(str, s)
		default: // wildcard: * matches any run of characters, nothing else is special
			ok, err := path.Match(escapeGlob(s), escapeGlob2(str))
			return err == nil && ok
		}
	}
}

// escapeGlob turns an EventBridge wildcard (only * is special) into a
// path.Match pattern; escapeGlob2 makes '/' ordinary on the matched side
// too, since path.Match's * stops at '/'.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '?', '[', ']':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '/':
			b.WriteRune('\x00')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func escapeGlob2(s string) string { return strings.ReplaceAll(s, "/", "\x00") }

// Match reports whether the event document (the JSON an EventBridge rule
// sees) matches. A nil pattern matches everything.
func (p *Pattern) Match(doc []byte) bool {
	if p == nil {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	return p.match(v)
}

func (p *Pattern) match(obj map[string]any) bool {
	for key, fp := range p.fields {
		v, present := obj[key]
		if fp.nested != nil {
			child, ok := v.(map[string]any)
			if !ok || !fp.nested.match(child) {
				return false
			}
			continue
		}
		if !fp.matchValue(v, present) {
			return false
		}
	}
	return true
}

// matchValue: an array in the event matches when any element does.
func (fp *fieldPattern) matchValue(v any, present bool) bool {
	if list, ok := v.([]any); ok && present {
		if len(list) == 0 {
			return fp.any(nil, false)
		}
		for _, el := range list {
			if fp.any(el, true) {
				return true
			}
		}
		return false
	}
	return fp.any(v, present)
}

func (fp *fieldPattern) any(v any, present bool) bool {
	for _, m := range fp.matchers {
		if m(v, present) {
			return true
		}
	}
	return false
}
