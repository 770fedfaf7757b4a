package lightrag

import (
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
func validateGraphML(in *input, names bool) *FileStats {
	st := &FileStats{Kind: KindGraphML}
	t := &tagReader{in: in}
	keys := map[string]string{} // key id -> attr.name
	// Nodes are held as hashes of their ids as written, 8 bytes each
	// whatever the id's length: a 10 GB graph has hundreds of thousands of
	// nodes and edges, and holding their ids as strings cost tens of MiB.
	// Edges are checked as they come, against the nodes seen so far
	// (networkx writes every node first); only an edge naming a node not
	// seen yet is kept, by name, for the check at the end.
	nodes := map[uint64]struct{}{}
	type edge struct{ source, target string }
	var later []edge
	var edgeCount int64
	var ids, pairs keyCollector
	var stack []string
	sawRoot := false
	interned := map[string]string{} // tag names: the stack holds no copies
	for {
		err := t.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Problem = fmt.Sprintf("GraphML does not parse: %v", err)
			return st
		}
		tag := &t.tag
		if tag.end {
			if len(stack) == 0 || stack[len(stack)-1] != string(tag.name) {
				st.Problem = fmt.Sprintf("GraphML does not parse: unexpected </%s>", tag.name)
				return st
			}
			stack = stack[:len(stack)-1]
			continue
		}
		switch string(tag.name) {
		case "graphml":
			sawRoot = true
		case "key":
			keys[string(tag.attr("id"))] = string(tag.attr("attr.name"))
		case "node":
			id := tag.attr("id")
			if len(id) == 0 {
				st.Problem = "a node has no id"
				return st
			}
			h := hashName(id)
			if _, seen := nodes[h]; !seen {
				nodes[h] = struct{}{}
				if names {
					ids.add(unescapeXML(id))
				}
			}
		case "edge":
			source, target := tag.attr("source"), tag.attr("target")
			edgeCount++
			if names {
				pairs.addPair(unescapeXML(source), unescapeXML(target))
			}
			_, okS := nodes[hashName(source)]
			_, okT := nodes[hashName(target)]
			if !okS || !okT {
				later = append(later, edge{string(source), string(target)})
			}
		case "data":
			if _, ok := keys[string(tag.attr("key"))]; !ok {
				st.Problem = fmt.Sprintf("data uses undeclared key %q", tag.attr("key"))
				return st
			}
		}
		if !tag.selfClosing {
			name, ok := interned[string(tag.name)]
			if !ok {
				name = string(tag.name)
				interned[name] = name
			}
			stack = append(stack, name)
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
	for _, e := range later {
		_, okS := nodes[hashName([]byte(e.source))]
		_, okT := nodes[hashName([]byte(e.target))]
		if !okS || !okT {
			st.Problem = fmt.Sprintf("edge %q -> %q names a node that does not exist", e.source, e.target)
			return st
		}
	}
	st.Nodes, st.Edges = int64(len(nodes)), edgeCount
	if names {
		st.Keys, st.Pairs = ids.set(), pairs.set()
	}
	return st
}

// tag is one start or end tag. Attribute values are kept as written
// (entities not expanded): ids are compared with ids written the same way.
// Its slices point into the tagReader's buffer until the next tag is read.
type tag struct {
	name        []byte
	end         bool
	selfClosing bool
	attrs       []attr
}

type attr struct{ name, value []byte }

func (t *tag) attr(name string) []byte {
	for _, a := range t.attrs {
		if string(a.name) == name {
			return a.value
		}
	}
	return nil
}

// tagReader returns the tags of an XML document, skipping text, comments,
// processing instructions, CDATA and declarations.
type tagReader struct {
	in  *input
	buf []byte
	tag tag
}

var errTruncated = errors.New("unexpected end of file inside markup")

// next reads the next tag into t.tag; io.EOF at the end of the file.
func (t *tagReader) next() error {
	for {
		if !t.skipText() {
			return io.EOF
		}
		c, ok := t.in.next()
		if !ok {
			return errTruncated
		}
		switch c {
		case '?':
			if err := t.skipPast("?>", nil); err != nil {
				return err
			}
			continue
		case '!':
			if err := t.skipDeclaration(); err != nil {
				return err
			}
			continue
		}
		t.in.back()
		raw, err := t.readTag()
		if err != nil {
			return err
		}
		return parseTag(raw, &t.tag)
	}
}

// skipText consumes input up to and including the next '<'; false at the
// end of the file.
func (t *tagReader) skipText() bool {
	for {
		p := t.in.rest()
		if p == nil {
			return false
		}
		if i := bytes.IndexByte(p, '<'); i >= 0 {
			t.in.pos += i + 1
			return true
		}
		t.in.pos += len(p)
	}
}

// readTag reads up to the '>' that closes the tag, honouring quotes.
func (t *tagReader) readTag() ([]byte, error) {
	t.buf = t.buf[:0]
	var quote byte
	for {
		p := t.in.rest()
		if p == nil {
			return nil, errTruncated
		}
		if quote != 0 {
			j := bytes.IndexByte(p, quote)
			if j < 0 {
				t.buf = append(t.buf, p...)
				t.in.pos += len(p)
				continue
			}
			t.buf = append(t.buf, p[:j+1]...)
			t.in.pos += j + 1
			quote = 0
			continue
		}
		i := run(p, 0, &plainInTag)
		t.buf = append(t.buf, p[:i]...)
		t.in.pos += i
		if i == len(p) {
			continue
		}
		t.in.pos++
		switch c := p[i]; c {
		case '>':
			return t.buf, nil
		case '<':
			return nil, errors.New("'<' inside a tag")
		default: // a quote opens
			quote = c
			t.buf = append(t.buf, c)
		}
	}
}

// plainInTag: bytes readTag copies without a second look.
var plainInTag = byteClass(func(c byte) bool { return c != '"' && c != '\'' && c != '>' && c != '<' })

// skipDeclaration consumes a comment, a CDATA section or another <!...>
// declaration whose "<!" was consumed.
func (t *tagReader) skipDeclaration() error {
	var seen []byte
	for i, want := range []byte("[CDATA[") {
		c, ok := t.in.next()
		if !ok {
			return errTruncated
		}
		seen = append(seen, c)
		switch {
		case i < 2 && string(seen) == "--":
			return t.skipPast("-->", seen)
		case i == 0 && c == '-':
			continue // maybe a comment
		case c == '>':
			return nil // a short declaration ends here
		case c != want:
			return t.skipPast(">", nil)
		}
	}
	return t.skipPast("]]>", nil)
}

// skipPast consumes input up to and including end; window holds the bytes
// already consumed that may begin it.
func (t *tagReader) skipPast(end string, window []byte) error {
	last := end[len(end)-1]
	for {
		c, ok := t.in.next()
		if !ok {
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

// parseTag parses raw (the bytes between '<' and '>') into tg, reusing its
// attribute slice.
func parseTag(raw []byte, tg *tag) error {
	tg.name, tg.end, tg.selfClosing, tg.attrs = nil, false, false, tg.attrs[:0]
	if len(raw) > 0 && raw[0] == '/' {
		tg.end = true
		tg.name = bytes.TrimSpace(raw[1:])
		if len(tg.name) == 0 {
			return errors.New("empty end tag")
		}
		return nil
	}
	if n := len(raw); n > 0 && raw[n-1] == '/' {
		tg.selfClosing = true
		raw = raw[:n-1]
	}
	i := 0
	for i < len(raw) && !isSpace(raw[i]) {
		i++
	}
	tg.name = raw[:i]
	if len(tg.name) == 0 {
		return errors.New("a tag without a name")
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
		name := raw[start:i]
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i == len(raw) || raw[i] != '=' {
			return fmt.Errorf("attribute %q of <%s> has no value", name, tg.name)
		}
		i++
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i == len(raw) || (raw[i] != '"' && raw[i] != '\'') {
			return fmt.Errorf("attribute %q of <%s> is not quoted", name, tg.name)
		}
		q := raw[i]
		end := bytes.IndexByte(raw[i+1:], q)
		if end < 0 {
			return fmt.Errorf("attribute %q of <%s> is not closed", name, tg.name)
		}
		tg.attrs = append(tg.attrs, attr{name, raw[i+1 : i+1+end]})
		i += end + 2
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
