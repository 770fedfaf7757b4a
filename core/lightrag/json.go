package lightrag

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// validateKV checks a key-value store: one JSON object, key -> record,
// every value well-formed JSON. It streams, holding no record; with c set
// it also collects the store's keys (or, for the document status store,
// the keys of processed documents).
func validateKV(in *input, c collect) *FileStats {
	st := &FileStats{Kind: KindKV}
	s := &scanner{in: in}
	b, err := s.nonSpace()
	if err != nil || b != '{' {
		st.Problem = "not a JSON object"
		return st
	}
	var keys, unfinished keyCollector
	var docs unfinishedDocs
	var key, status []byte
	err = s.members('}', func() error {
		var err error
		if key, err = s.memberKey(key[:0], c != collectNone); err != nil {
			return err
		}
		st.Records++
		switch c {
		case collectKeys:
			keys.add(decodedJSON(key))
		case collectPairKeys:
			keys.addSepPair(decodedJSON(key))
		case collectProcessed:
			if status, err = s.fieldOf("status", status[:0]); err != nil {
				return err
			}
			switch string(status) {
			case "processed":
				keys.add(decodedJSON(key))
			case StatusPending, StatusProcessing, StatusFailed:
				id := decodedJSON(key)
				unfinished.add(id)
				docs.add(string(id), string(status))
			}
			return nil
		}
		return s.value(0)
	})
	if err == nil {
		if err = s.end(); err != nil {
			err = fmt.Errorf("data after the JSON object")
		}
	}
	if err != nil {
		st.Problem = fmt.Sprintf("JSON does not parse after %d records: %v", st.Records, err)
		return st
	}
	switch c {
	case collectNone:
	case collectPairKeys:
		st.Pairs = keys.set()
	case collectProcessed:
		st.Keys = keys.set()
		u := &Unfinished{Keys: unfinished.set()}
		u.Docs, u.Counts = docs.result()
		st.Unfinished = u
	default:
		st.Keys = keys.set()
	}
	return st
}

// memberKey reads an object member's `"key":`, appending the key's body
// (escapes as written) to dst when keep is set.
func (s *scanner) memberKey(dst []byte, keep bool) ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return dst, err
	}
	dst, err := s.stringInto(dst, keep)
	if err != nil {
		return dst, err
	}
	return dst, s.expect(':')
}

// decodedJSON returns a string body with its escapes decoded.
func decodedJSON(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return unescapeJSON(raw)
}

// fieldOf checks one value and, when it is an object with a string member
// named field, returns that member's body.
func (s *scanner) fieldOf(field string, dst []byte) ([]byte, error) {
	b, err := s.nonSpace()
	if err != nil {
		return nil, err
	}
	if b != '{' {
		s.in.back()
		return nil, s.value(0)
	}
	var key []byte
	found := false
	err = s.members('}', func() error {
		var err error
		if key, err = s.memberKey(key[:0], true); err != nil {
			return err
		}
		if string(key) != field || found {
			return s.value(1)
		}
		b, err := s.nonSpace()
		if err != nil {
			return err
		}
		if b != '"' {
			s.in.back()
			return s.value(1)
		}
		found = true
		dst, err = s.stringInto(dst, true)
		return err
	})
	if !found {
		dst = dst[:0]
	}
	return dst, err
}

// validateVDB checks a nano-vectordb file:
//
//	{"embedding_dim": N, "data": [{...}, ...], "matrix": "<base64 float32>"}
//
// The matrix string can be hundreds of megabytes, so it is scanned, never
// held: rows = decoded bytes / (4 x N) must equal the records in data.
func validateVDB(in *input, c collect) *FileStats {
	st := &FileStats{Kind: KindVDB}
	s := &scanner{in: in}
	var matrixBytes int64 = -1
	var keys keyCollector
	err := s.object(func(key string) error {
		switch key {
		case "embedding_dim":
			n, err := s.number()
			st.Dim = n
			return err
		case "data":
			var n int64
			var err error
			if c == collectNone {
				n, err = s.countArray()
			} else {
				n, err = s.collectRecords(c, &keys)
			}
			st.Records = n
			return err
		case "matrix":
			n, err := s.base64Length()
			matrixBytes = n
			return err
		}
		return s.skipValue()
	})
	if err == nil {
		if err = s.end(); err != nil {
			err = fmt.Errorf("data after the JSON object")
		}
	}
	switch {
	case err != nil:
		st.Problem = fmt.Sprintf("vector store does not parse: %v", err)
	case st.Dim <= 0:
		st.Problem = "vector store has no positive embedding_dim"
	case matrixBytes < 0:
		st.Problem = "vector store has no matrix"
	case matrixBytes%(4*st.Dim) != 0:
		st.Problem = fmt.Sprintf("matrix holds %d bytes, not a whole number of %d-dimension float32 rows", matrixBytes, st.Dim)
	default:
		st.Rows = matrixBytes / (4 * st.Dim)
		if st.Rows != st.Records {
			st.Problem = fmt.Sprintf("matrix has %d rows but data has %d records", st.Rows, st.Records)
		}
	}
	if st.Problem == "" && c != collectNone {
		if c == collectRelations {
			st.Pairs = keys.set()
		} else {
			st.Keys = keys.set()
		}
	}
	return st
}

// collectRecords consumes the "data" array of a vector store, collecting
// from each record the name c asks for: entity_name, the (src_id, tgt_id)
// pair, or __id__.
func (s *scanner) collectRecords(c collect, keys *keyCollector) (int64, error) {
	if b, err := s.nonSpace(); err != nil || b != '[' {
		return 0, s.syntax("want an array")
	}
	var n int64
	var key, a, b []byte
	err := s.members(']', func() error {
		n++
		first, err := s.nonSpace()
		if err != nil {
			return err
		}
		if first != '{' {
			return s.skipFrom(first)
		}
		a, b = a[:0], b[:0]
		var haveA, haveB bool
		err = s.members('}', func() error {
			var err error
			if key, err = s.memberKey(key[:0], true); err != nil {
				return err
			}
			var dst *[]byte
			var have *bool
			switch {
			case c == collectEntityNames && string(key) == "entity_name",
				c == collectIDs && string(key) == "__id__",
				c == collectRelations && string(key) == "src_id":
				dst, have = &a, &haveA
			case c == collectRelations && string(key) == "tgt_id":
				dst, have = &b, &haveB
			default:
				return s.skipValue()
			}
			v, err := s.nonSpace()
			if err != nil {
				return err
			}
			if v != '"' {
				return s.skipFrom(v)
			}
			*have = true
			*dst, err = s.stringInto((*dst)[:0], true)
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case c == collectRelations && haveA && haveB:
			keys.addPair(decodedJSON(a), decodedJSON(b))
		case c != collectRelations && haveA:
			keys.add(decodedJSON(a))
		default:
			keys.add(nil) // a record without its name: the sets must disagree
		}
		return nil
	})
	return n, err
}

// scanner is a small streaming JSON reader: enough structure to walk a
// top-level object and skip, count or measure values without building them.
// Runs of plain bytes (string bodies, base64, skipped values) are scanned a
// piece at a time with lookup tables, not byte by byte through calls.
type scanner struct {
	in *input
}

var errSyntax = errors.New("JSON syntax error")

func (s *scanner) read() (byte, error) {
	c, ok := s.in.next()
	if !ok {
		return 0, io.ErrUnexpectedEOF
	}
	return c, nil
}

func (s *scanner) nonSpace() (byte, error) {
	for {
		c, ok := s.in.next()
		if !ok {
			return 0, io.ErrUnexpectedEOF
		}
		if !isSpace(c) {
			return c, nil
		}
	}
}

func (s *scanner) syntax(what string) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, s.in.offset(), what)
}

// object walks a top-level object, calling fn with each key; fn must
// consume the value.
func (s *scanner) object(fn func(key string) error) error {
	if b, err := s.nonSpace(); err != nil || b != '{' {
		return s.syntax("want an object")
	}
	b, err := s.nonSpace()
	if err != nil {
		return err
	}
	if b == '}' {
		return nil
	}
	for {
		if b != '"' {
			return s.syntax("want a key")
		}
		key, err := s.shortString()
		if err != nil {
			return err
		}
		if b, err := s.nonSpace(); err != nil || b != ':' {
			return s.syntax("want ':'")
		}
		if err := fn(key); err != nil {
			return err
		}
		if b, err = s.nonSpace(); err != nil {
			return err
		}
		switch b {
		case '}':
			return nil
		case ',':
			if b, err = s.nonSpace(); err != nil {
				return err
			}
		default:
			return s.syntax("want ',' or '}'")
		}
	}
}

// end checks only white space follows.
func (s *scanner) end() error {
	for {
		c, ok := s.in.next()
		if !ok {
			return nil
		}
		if !isSpace(c) {
			return s.syntax("trailing data")
		}
	}
}

// shortString reads a string whose opening quote was consumed (keys).
func (s *scanner) shortString() (string, error) {
	var out []byte
	for {
		b, err := s.read()
		if err != nil {
			return "", err
		}
		switch b {
		case '"':
			return string(out), nil
		case '\\':
			e, err := s.read()
			if err != nil {
				return "", err
			}
			out = append(out, '\\', e)
		default:
			if len(out) < 1024 {
				out = append(out, b)
			}
		}
	}
}

// Byte classes for the run scanners.
var (
	// plainString: bytes that need no attention inside a string.
	plainString = byteClass(func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' })
	// notStructural: bytes skipValue passes over inside an object or array.
	notStructural = byteClass(func(c byte) bool { return c != '"' && c != '{' && c != '[' && c != '}' && c != ']' })
	// base64Alphabet: standard base64, padding excluded.
	base64Alphabet = byteClass(func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
	})
)

// byteClass is a table of 1 for the bytes in the class, 0 for the rest:
// bytes, not bools, so run can AND eight lookups and test once.
type byteClassTable = [256]byte

func byteClass(in func(byte) bool) (t byteClassTable) {
	for c := range 256 {
		if in(byte(c)) {
			t[c] = 1
		}
	}
	return t
}

// skipString consumes a string whose opening quote was consumed.
func (s *scanner) skipString() error {
	for {
		p := s.in.rest()
		if p == nil {
			return io.ErrUnexpectedEOF
		}
		i := run(p, 0, &plainString)
		s.in.pos += i
		if i == len(p) {
			continue
		}
		s.in.pos++
		switch c := p[i]; c {
		case '"':
			return nil
		case '\\':
			if _, err := s.read(); err != nil {
				return err
			}
		default:
			return s.syntax("control character in a string")
		}
	}
}

// skipValue consumes any value.
func (s *scanner) skipValue() error {
	b, err := s.nonSpace()
	if err != nil {
		return err
	}
	return s.skipFrom(b)
}

func (s *scanner) skipFrom(b byte) error {
	switch b {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 1
		for depth > 0 {
			p := s.in.rest()
			if p == nil {
				return io.ErrUnexpectedEOF
			}
			i := run(p, 0, &notStructural)
			s.in.pos += i
			if i == len(p) {
				continue
			}
			s.in.pos++
			switch p[i] {
			case '"':
				if err := s.skipString(); err != nil {
					return err
				}
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
		return nil
	}
	// A literal or number: consume until a delimiter.
	for {
		c, ok := s.in.next()
		if !ok {
			return s.syntax("value not terminated")
		}
		switch c {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			s.in.back()
			return nil
		}
	}
}

// number reads an integer value.
func (s *scanner) number() (int64, error) {
	b, err := s.nonSpace()
	if err != nil {
		return 0, err
	}
	digits := []byte{b}
	for {
		c, ok := s.in.next()
		if !ok {
			return 0, s.syntax("number not terminated")
		}
		if (c < '0' || c > '9') && c != '-' {
			s.in.back()
			break
		}
		digits = append(digits, c)
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, s.syntax("want an integer")
	}
	return n, nil
}

// countArray consumes an array and returns how many elements it has.
func (s *scanner) countArray() (int64, error) {
	if b, err := s.nonSpace(); err != nil || b != '[' {
		return 0, s.syntax("want an array")
	}
	b, err := s.nonSpace()
	if err != nil {
		return 0, err
	}
	if b == ']' {
		return 0, nil
	}
	var n int64
	for {
		if err := s.skipFrom(b); err != nil {
			return n, err
		}
		n++
		if b, err = s.nonSpace(); err != nil {
			return n, err
		}
		switch b {
		case ']':
			return n, nil
		case ',':
			if b, err = s.nonSpace(); err != nil {
				return n, err
			}
		default:
			return n, s.syntax("want ',' or ']'")
		}
	}
}

// base64Length consumes a base64 string and returns its decoded length,
// checking the alphabet and padding.
func (s *scanner) base64Length() (int64, error) {
	if b, err := s.nonSpace(); err != nil || b != '"' {
		return 0, s.syntax("matrix is not a string")
	}
	var chars, pad int64
	escaped := false // the previous byte was a backslash
	for {
		p := s.in.rest()
		if p == nil {
			return 0, io.ErrUnexpectedEOF
		}
		i := 0
		for i < len(p) {
			if pad == 0 && !escaped {
				// The common case: a run of plain base64 characters.
				j := run(p, i, &base64Alphabet)
				chars += int64(j - i)
				if i = j; i == len(p) {
					break
				}
			}
			c := p[i]
			i++
			switch {
			case escaped:
				// JSON may escape '/' as "\/"; nothing else belongs in base64.
				if c != '/' {
					s.in.pos += i
					return 0, s.syntax("escape in base64 data")
				}
				escaped = false
				chars++
			case c == '"':
				s.in.pos += i
				if (chars+pad)%4 != 0 || pad > 2 {
					return 0, s.syntax("base64 length is not a multiple of 4")
				}
				return chars * 6 / 8, nil
			case c == '\\':
				escaped = true
			case c == '=':
				pad++
			case pad > 0:
				s.in.pos += i
				return 0, s.syntax("base64 data after padding")
			default:
				s.in.pos += i
				return 0, s.syntax(fmt.Sprintf("byte %q is not base64", c))
			}
		}
		s.in.pos += i
	}
}

// run returns the end of the run of bytes of class in p starting at i:
// eight bytes per step with one branch, then byte by byte.
func run(p []byte, i int, class *byteClassTable) int {
	for ; i+8 <= len(p); i += 8 {
		q := p[i : i+8 : i+8]
		if class[q[0]]&class[q[1]]&class[q[2]]&class[q[3]]&
			class[q[4]]&class[q[5]]&class[q[6]]&class[q[7]] == 0 {
			break
		}
	}
	for i < len(p) && class[p[i]] != 0 {
		i++
	}
	return i
}

// maxDepth bounds nesting, so a hostile file cannot exhaust the stack.
const maxDepth = 512

// value checks one JSON value, strictly.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return s.syntax("nested too deeply")
	}
	b, err := s.nonSpace()
	if err != nil {
		return err
	}
	switch {
	case b == '"':
		return s.checkString()
	case b == '{':
		return s.members('}', func() error {
			if err := s.expectString(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			return s.value(depth + 1)
		})
	case b == '[':
		return s.members(']', func() error { return s.value(depth + 1) })
	case b == 't':
		return s.literal("rue")
	case b == 'f':
		return s.literal("alse")
	case b == 'n':
		return s.literal("ull")
	case b == '-' || (b >= '0' && b <= '9'):
		return s.checkNumber(b)
	}
	return s.syntax(fmt.Sprintf("unexpected %q", b))
}

// members checks the members of an object or array whose opening bracket
// was consumed, calling member for each.
func (s *scanner) members(closing byte, member func() error) error {
	b, err := s.nonSpace()
	if err != nil {
		return err
	}
	if b == closing {
		return nil
	}
	s.in.back()
	for {
		if err := member(); err != nil {
			return err
		}
		b, err := s.nonSpace()
		if err != nil {
			return err
		}
		switch b {
		case closing:
			return nil
		case ',':
		default:
			return s.syntax(fmt.Sprintf("want ',' or %q", closing))
		}
	}
}

func (s *scanner) expect(want byte) error {
	b, err := s.nonSpace()
	if err != nil {
		return err
	}
	if b != want {
		return s.syntax(fmt.Sprintf("want %q", want))
	}
	return nil
}

func (s *scanner) expectString() error {
	if err := s.expect('"'); err != nil {
		return err
	}
	return s.checkString()
}

func (s *scanner) literal(rest string) error {
	for i := 0; i < len(rest); i++ {
		b, err := s.read()
		if err != nil || b != rest[i] {
			return s.syntax("bad literal")
		}
	}
	return nil
}

// checkNumber checks a number whose first byte was consumed, by JSON's
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) checkNumber(first byte) error {
	peek := func() byte {
		c, ok := s.in.next()
		if !ok {
			return 0
		}
		s.in.back()
		return c
	}
	take := func() { s.in.pos++ }
	digits := func() int {
		n := 0
		for c := peek(); c >= '0' && c <= '9'; c = peek() {
			take()
			n++
		}
		return n
	}
	c := first
	if c == '-' {
		if c = peek(); c < '0' || c > '9' {
			return s.syntax("bad number")
		}
		take()
	}
	if c != '0' {
		digits()
	}
	if peek() == '.' {
		take()
		if digits() == 0 {
			return s.syntax("bad number")
		}
	}
	if c := peek(); c == 'e' || c == 'E' {
		take()
		if c := peek(); c == '+' || c == '-' {
			take()
		}
		if digits() == 0 {
			return s.syntax("bad number")
		}
	}
	return nil
}

// checkString checks a string whose opening quote was consumed: valid
// escapes, no raw control characters.
func (s *scanner) checkString() error {
	_, err := s.stringInto(nil, false)
	return err
}

// maxName bounds the bytes of one string kept by stringInto; longer names
// are compared by their first maxName bytes.
const maxName = 1 << 20

// stringInto checks a string whose opening quote was consumed and, when
// keep is set, appends its body (escapes as written) to dst.
func (s *scanner) stringInto(dst []byte, keep bool) ([]byte, error) {
	hex := 0 // \u digits still expected
	escaped := false
	for {
		p := s.in.rest()
		if p == nil {
			return dst, io.ErrUnexpectedEOF
		}
		i := 0
		for i < len(p) {
			if hex == 0 && !escaped {
				j := run(p, i, &plainString)
				if keep && len(dst) < maxName {
					dst = append(dst, p[i:min(j, i+maxName-len(dst))]...)
				}
				if i = j; i == len(p) {
					break
				}
			}
			c := p[i]
			i++
			switch {
			case hex > 0:
				if !isHex(c) {
					s.in.pos += i
					return dst, s.syntax("bad \\u escape")
				}
				hex--
			case escaped:
				switch c {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				case 'u':
					hex = 4
				default:
					s.in.pos += i
					return dst, s.syntax(fmt.Sprintf("bad escape \\%c", c))
				}
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				s.in.pos += i
				return dst, nil
			default: // a control character
				s.in.pos += i
				return dst, s.syntax("control character in a string")
			}
			if keep && len(dst) < maxName {
				dst = append(dst, c)
			}
		}
		s.in.pos += i
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
