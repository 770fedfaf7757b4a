package lightrag

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// validateGraphML parses networkx GraphML: <key> declarations map ids to
// attr.name, nodes and edges are counted, tags must nest and close, every
// edge must join declared nodes and every <data> must use a declared key.
// It tokenizes tags itself (encoding/xml is about ten times slower and
// backups read this file on every run) and skips text content.
func validateGraphML(r io.Reader) *FileStats {
	st := &FileStats{Kind: KindGraphML}
	t := &tagReader{r: bufio.NewReaderSize(r, 256<<10)}
	keys := map[string]string{} // key id -> attr.name
	nodes := map[string]struct{}{}
	type edge struct{ source, target string }
	var edges []edge
	var stack []string
	sawRoot := false
	for {
		tag, err := t.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Problem = fmt.Sprintf("GraphML does not parse: %v", err)
			return st
		}
		if tag.end {
			if len(stack) == 0 || stack[len(stack)-1] != tag.name {
				st.Problem = fmt.Sprintf("GraphML does not parse: unexpected </%s>", tag.name)
				return st
			}
			stack = stack[:len(stack)-1]
			continue
		}
		switch tag.name {
		case "graphml":
			sawRoot = true
		case "key":
			keys[tag.attr("id")] = tag.attr("attr.name")
		case "node":
			id := tag.attr("id")
			if id == "" {
				st.Problem = "a node has no id"
				return st
			}
			nodes[id] = struct{}{}
		case "edge":
			edges = append(edges, edge{tag.attr("source"), tag.attr("target")})
		case "data":
			if _, ok := keys[tag.attr("key")]; !ok {
				st.Problem = fmt.Sprintf("data uses undeclared key %q", tag.attr("key"))
				return st
			}
		}
		if !tag.selfClosing {
			stack = append(stack, tag.name)
		}
	}
	switch {
	case !sawRoot:
		st.Problem = "not a GraphML document (no <graphml> element)"
		return st
	case len(stack) > 0:
		st.Problem = fmt.Sprintf("GraphML does not parse: <%s> is never closed (the file is truncated)", stack[len(stack)-1])
		return st
	}
	for _, e := range edges {
		_, okS := nodes[e.source]
		_, okT := nodes[e.target]
		if !okS || !okT {
			st.Problem = fmt.Sprintf("edge %q -> %q names a node that does not exist", e.source, e.target)
			return st
		}
	}
	st.Nodes, st.Edges = int64(len(nodes)), int64(len(edges))
	return st
}

// tag is one start or end tag. Attribute values are kept as written
// (entities not expanded): ids are compared with ids written the same way.
type tag struct {
	name        string
	end         bool
	selfClosing bool
	attrs       map[string]string
}

func (t tag) attr(name string) string { return t.attrs[name] }

// tagReader returns the tags of an XML document, skipping text, comments,
// processing instructions, CDATA and declarations.
type tagReader struct {
	r   *bufio.Reader
	buf []byte
}

var errTruncated = errors.New("unexpected end of file inside markup")

func (t *tagReader) next() (tag, error) {
	for {
		if _, err := t.r.ReadSlice('<'); err != nil {
			if err == bufio.ErrBufferFull {
				continue // long text
			}
			return tag{}, io.EOF
		}
		c, err := t.r.ReadByte()
		if err != nil {
			return tag{}, errTruncated
		}
		switch c {
		case '?':
			if err := t.skipPast("?>"); err != nil {
				return tag{}, err
			}
			continue
		case '!':
			if err := t.skipDeclaration(); err != nil {
				return tag{}, err
			}
			continue
		}
		_ = t.r.UnreadByte()
		raw, err := t.readTag()
		if err != nil {
			return tag{}, err
		}
		return parseTag(raw)
	}
}

// readTag reads up to the '>' that closes the tag, honouring quotes.
func (t *tagReader) readTag() ([]byte, error) {
	t.buf = t.buf[:0]
	var quote byte
	for {
		c, err := t.r.ReadByte()
		if err != nil {
			return nil, errTruncated
		}
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return t.buf, nil
		case c == '<':
			return nil, errors.New("'<' inside a tag")
		}
		t.buf = append(t.buf, c)
	}
}

func (t *tagReader) skipDeclaration() error {
	head, _ := t.r.Peek(7)
	switch {
	case bytes.HasPrefix(head, []byte("--")):
		return t.skipPast("-->")
	case bytes.HasPrefix(head, []byte("[CDATA[")):
		return t.skipPast("]]>")
	}
	return t.skipPast(">")
}

// skipPast consumes input up to and including end.
func (t *tagReader) skipPast(end string) error {
	last := end[len(end)-1]
	window := make([]byte, 0, len(end))
	for {
		c, err := t.r.ReadByte()
		if err != nil {
			return errTruncated
		}
		window = append(window, c)
		if len(window) > len(end) {
			window = window[1:]
		}
		if c == last && string(window) == end {
			return nil
		}
	}
}

func parseTag(raw []byte) (tag, error) {
	var tg tag
	if len(raw) > 0 && raw[0] == '/' {
		tg.end = true
		tg.name = string(bytes.TrimSpace(raw[1:]))
		if tg.name == "" {
			return tg, errors.New("empty end tag")
		}
		return tg, nil
	}
	if n := len(raw); n > 0 && raw[n-1] == '/' {
		tg.selfClosing = true
		raw = raw[:n-1]
	}
	i := 0
	for i < len(raw) && !isSpace(raw[i]) {
		i++
	}
	tg.name = string(raw[:i])
	if tg.name == "" {
		return tg, errors.New("a tag without a name")
	}
	for i < len(raw) {
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i == len(raw) {
			break
		}
		start := i
		for i < len(raw) && raw[i] != '=' && !isSpace(raw[i]) {
			i++
		}
		name := string(raw[start:i])
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i == len(raw) || raw[i] != '=' {
			return tg, fmt.Errorf("attribute %q of <%s> has no value", name, tg.name)
		}
		i++
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i == len(raw) || (raw[i] != '"' && raw[i] != '\'') {
			return tg, fmt.Errorf("attribute %q of <%s> is not quoted", name, tg.name)
		}
		q := raw[i]
		end := bytes.IndexByte(raw[i+1:], q)
		if end < 0 {
			return tg, fmt.Errorf("attribute %q of <%s> is not closed", name, tg.name)
		}
		if tg.attrs == nil {
			tg.attrs = map[string]string{}
		}
		tg.attrs[name] = string(raw[i+1 : i+1+end])
		i += end + 2
	}
	return tg, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
