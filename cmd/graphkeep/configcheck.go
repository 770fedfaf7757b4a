package main

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graphkeep/graphkeep/core/duration"
)

// parseConfig reads a YAML configuration file's text into out (a pointer to
// a struct with yaml tags). It checks the document against out's type before
// decoding it, so that every mistake is reported as the file, the line, the
// key, what was expected and, for a misspelt key, the closest valid one; and
// it reads every duration with core/duration ("7d" and "2w" too).
func parseConfig(file string, data []byte, out any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return syntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file configures nothing
	}
	c := configChecker{file: file}
	c.check(doc.Content[0], reflect.TypeOf(out).Elem(), "")
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}
	if err := doc.Content[0].Decode(out); err != nil {
		return fmt.Errorf("config file %s: %v", file, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError says where the YAML does not parse.
func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("config file %s, line %s: not valid YAML: %s (check the indentation above it, and quote a value that holds \": \" or starts with a special character)", file, m[1], m[2])
	}
	return fmt.Errorf("config file %s: not valid YAML: %s", file, strings.TrimPrefix(msg, "yaml: "))
}

type configChecker struct {
	file string
	errs []error
}

var (
	durationType       = reflect.TypeOf(time.Duration(0))
	parsedDurationType = reflect.TypeOf(duration.Duration(0))
	textUnmarshaler    = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func (c *configChecker) fail(n *yaml.Node, key, format string, args ...any) {
	where := fmt.Sprintf("config file %s, line %d", c.file, n.Line)
	if key != "" {
		where += ", " + key
	}
	c.errs = append(c.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

// check walks node as a value of type t; key is its dotted path.
func (c *configChecker) check(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType || t == parsedDurationType:
		if !c.scalar(n, key, "a duration, like 30s, 6h or 7d") {
			return
		}
		d, err := duration.Parse(n.Value)
		if err != nil {
			c.fail(n, key, "%q is not a duration: want %s", n.Value, duration.Examples)
			return
		}
		if t == durationType { // yaml.v3 reads time.Duration with Go's units only
			n.Value, n.Tag, n.Style = time.Duration(d).String(), "!!str", 0
		}
		return
	case reflect.PointerTo(t).Implements(textUnmarshaler):
		c.scalar(n, key, "a single value")
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		c.mapping(n, t, key)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.fail(n, key, "want a mapping (keys indented below %s), not %s", or(key, "the top"), describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.check(n.Content[i+1], t.Elem(), join(key, n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.fail(n, key, "want a list (items starting with \"- \"), not %s", describe(n))
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i))
		}
	case reflect.Bool:
		if c.scalar(n, key, "true or false") {
			if _, err := strconv.ParseBool(n.Value); err != nil && n.Tag != "!!bool" {
				c.fail(n, key, "%q is not true or false", n.Value)
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if c.scalar(n, key, "a whole number") && n.Tag != "!!int" {
			c.fail(n, key, "%q is not a whole number", n.Value)
		}
	case reflect.Float32, reflect.Float64:
		if c.scalar(n, key, "a number") && n.Tag != "!!int" && n.Tag != "!!float" {
			c.fail(n, key, "%q is not a number", n.Value)
		}
	case reflect.String:
		c.scalar(n, key, "a single value")
	}
}

// mapping checks n against struct t: every key known, every value checked.
func (c *configChecker) mapping(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.MappingNode {
		c.fail(n, key, "want a mapping (keys indented below %s), not %s", or(key, "the top of the file"), describe(n))
		return
	}
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			sort.Strings(names)
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if key != "" {
				msg += " in " + key
			}
			if near := closest(k.Value, names); near != "" {
				msg += fmt.Sprintf("; did you mean %s?", near)
			}
			c.fail(k, "", "%s (valid keys there: %s)", msg, strings.Join(names, ", "))
			continue
		}
		c.check(v, ft, join(key, k.Value))
	}
}

// scalar reports whether n is a single value, failing otherwise.
func (c *configChecker) scalar(n *yaml.Node, key, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	c.fail(n, key, "want %s, not %s", want, describe(n))
	return false
}

// yamlFields maps each yaml key of struct t (inline structs flattened) to
// its field's type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// closest is the valid name nearest to s, when one is near enough to be
// what was meant.
func closest(s string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func join(key, sub string) string {
	if key == "" {
		return sub
	}
	return key + "." + sub
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
