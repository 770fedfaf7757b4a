package lightrag

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// validateKV checks a key-value store: one JSON object, key -> record. It
// decodes each record in turn, so memory is bounded by the largest record.
func validateKV(r io.Reader) *FileStats {
	st := &FileStats{Kind: KindKV}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		st.Problem = "not a JSON object"
		return st
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			st.Problem = fmt.Sprintf("JSON does not parse after %d records: %v", st.Records, err)
			return st
		}
		var rec json.RawMessage
		if err := dec.Decode(&rec); err != nil {
			st.Problem = fmt.Sprintf("JSON does not parse after %d records: %v", st.Records, err)
			return st
		}
		st.Records++
	}
	if _, err := dec.Token(); err != nil {
		st.Problem = fmt.Sprintf("JSON object is not closed: %v", err)
		return st
	}
	if _, err := dec.Token(); err != io.EOF {
		st.Problem = "data after the JSON object"
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
