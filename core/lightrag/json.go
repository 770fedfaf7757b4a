package lightrag

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// validateKV checks a key-value store: one JSON object, key -> record,
// every value well-formed JSON. It streams, holding no record.
func validateKV(r io.Reader) *FileStats {
	st := &FileStats{Kind: KindKV}
	s := &scanner{r: bufio.NewReaderSize(r, 256<<10)}
	b, err := s.nonSpace()
	if err != nil || b != '{' {
		st.Problem = "not a JSON object"
		return st
	}
	err = s.members('}', func() error {
		if err := s.expectString(); err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		st.Records++
		return s.value(0)
	})
	if err == nil {
		if err = s.end(); err != nil {
			err = fmt.Errorf("data after the JSON object")
		}
	}
	if err != nil {
		st.Problem = fmt.Sprintf("JSON does not parse after %d records: %v", st.Records, err)
	}
	return st
}

// validateVDB checks a nano-vectordb file:
//
//	{"embedding_dim": N, "data": [{...}, ...], "matrix": "<base64 float32>"}
//
// The matrix string can be hundreds of megabytes, so it is scanned, never
// held: rows = decoded bytes / (4 x N) must equal the records in data.
func validateVDB(r io.Reader) *FileStats {
	st := &FileStats{Kind: KindVDB}
	s := &scanner{r: bufio.NewReaderSize(r, 256<<10)}
	var matrixBytes int64 = -1
	err := s.object(func(key string) error {
		switch key {
		case "embedding_dim":
			n, err := s.number()
			st.Dim = n
			return err
		case "data":
			n, err := s.countArray()
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
	return st
}

// scanner is a small streaming JSON reader: enough structure to walk a
// top-level object and skip, count or measure values without building them.
type scanner struct {
	r   *bufio.Reader
	off int64
}

var errSyntax = errors.New("JSON syntax error")

func (s *scanner) read() (byte, error) {
	b, err := s.r.ReadByte()
	if err == io.EOF {
		return 0, io.ErrUnexpectedEOF
	}
	s.off++
	return b, err
}

func (s *scanner) nonSpace() (byte, error) {
	for {
		b, err := s.read()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b, nil
	}
}

func (s *scanner) syntax(what string) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, s.off, what)
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
		b, err := s.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
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

// skipString consumes a string whose opening quote was consumed.
func (s *scanner) skipString() error {
	for {
		b, err := s.read()
		if err != nil {
			return err
		}
		switch b {
		case '"':
			return nil
		case '\\':
			if _, err := s.read(); err != nil {
				return err
			}
		default:
			if b < 0x20 {
				return s.syntax("control character in a string")
			}
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
			c, err := s.read()
			if err != nil {
				return err
			}
			switch c {
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
		c, err := s.r.ReadByte()
		if err != nil {
			return s.syntax("value not terminated")
		}
		switch c {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return s.r.UnreadByte()
		}
		s.off++
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
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, s.syntax("number not terminated")
		}
		if (c < '0' || c > '9') && c != '-' {
			_ = s.r.UnreadByte()
			break
		}
		s.off++
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
	escaped := false // a backslash ended the previous slice
	for {
		chunk, err := s.r.ReadSlice('"')
		if err != nil && err != bufio.ErrBufferFull {
			return 0, io.ErrUnexpectedEOF
		}
		s.off += int64(len(chunk))
		closed := err == nil
		if closed && escaped && len(chunk) == 1 {
			return 0, s.syntax("escape in base64 data")
		}
		body := chunk
		if closed {
			body = chunk[:len(chunk)-1]
		}
		for i := 0; i < len(body); i++ {
			c := body[i]
			if escaped {
				// JSON may escape '/' as "\/"; nothing else belongs in base64.
				if c != '/' {
					return 0, s.syntax("escape in base64 data")
				}
				escaped = false
				chars++
				continue
			}
			if base64Alphabet[c] && pad == 0 {
				// The common case: a run of plain base64 characters.
				j := i + 1
				for j < len(body) && base64Alphabet[body[j]] {
					j++
				}
				chars += int64(j - i)
				i = j - 1
				continue
			}
			switch {
			case c == '\\':
				escaped = true
			case c == '=':
				pad++
			case pad > 0:
				return 0, s.syntax("base64 data after padding")
			default:
				return 0, s.syntax(fmt.Sprintf("byte %q is not base64", c))
			}
		}
		if closed && !escaped {
			break
		}
		if closed && escaped {
			// the quote we stopped at was escaped: not base64
			return 0, s.syntax("escape in base64 data")
		}
	}
	if (chars+pad)%4 != 0 || pad > 2 {
		return 0, s.syntax("base64 length is not a multiple of 4")
	}
	return chars * 6 / 8, nil
}

// base64Alphabet marks the bytes of standard base64, padding excluded.
var base64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

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
	_ = s.r.UnreadByte()
	s.off--
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
		c, err := s.r.ReadByte()
		if err != nil {
			return 0
		}
		_ = s.r.UnreadByte()
		return c
	}
	take := func() { _, _ = s.r.ReadByte(); s.off++ }
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
// escapes, no raw control characters. Text runs are scanned a buffer at a
// time.
func (s *scanner) checkString() error {
	hex := 0 // \u digits still expected
	escaped := false
	for {
		chunk, err := s.r.ReadSlice('"')
		if err != nil && err != bufio.ErrBufferFull {
			return io.ErrUnexpectedEOF
		}
		s.off += int64(len(chunk))
		closed := err == nil
		body := chunk
		if closed {
			body = chunk[:len(chunk)-1]
		}
		for _, c := range body {
			switch {
			case hex > 0:
				if !isHex(c) {
					return s.syntax("bad \\u escape")
				}
				hex--
			case escaped:
				switch c {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				case 'u':
					hex = 4
				default:
					return s.syntax(fmt.Sprintf("bad escape \\%c", c))
				}
				escaped = false
			case c == '\\':
				escaped = true
			case c < 0x20:
				return s.syntax("control character in a string")
			}
		}
		if !closed {
			continue
		}
		if hex > 0 {
			return s.syntax("bad \\u escape")
		}
		if escaped {
			escaped = false // the quote was escaped; the string goes on
			continue
		}
		return nil
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
