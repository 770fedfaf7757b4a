package lightrag

import "io"

// The backup and restore feed validation through a Stream; the tests also
// validate whole files from a reader, as the reference a Stream must match.

// Validate reads a whole file of the given kind and reports what it found.
// It never fails: a broken file is a FileStats with a Problem. It reads r to
// the end even after a problem, so a tee feeding it never blocks.
func Validate(kind string, r io.Reader) *FileStats {
	validate := validator(kind, collectNone)
	if validate == nil {
		return nil
	}
	buf := make([]byte, 256<<10)
	more := func() []byte {
		for {
			n, err := r.Read(buf)
			if n > 0 {
				return buf[:n]
			}
			if err != nil {
				return nil
			}
		}
	}
	in := &input{more: more}
	st := validate(in)
	for more() != nil {
	}
	return st
}
