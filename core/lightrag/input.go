package lightrag

// Stream validates a file handed over in pieces, on its own goroutine: a
// backup or restore that already holds the bytes gives them here instead of
// reading the file twice, and the validation runs beside the work that
// produced them. A nil *Stream (from NewStream with a kind that is not
// validated) accepts and ignores everything.
type Stream struct {
	pieces chan piece
	result chan *FileStats
}

type piece struct {
	data []byte
	done func()
}

// streamQueue bounds the pieces a lagging validator holds besides the one
// it reads: each is a chunk of up to 4 MiB kept from the pool. Four per
// graph held ~20 MiB at the peak of a 10 GB backup, and one more keeps the
// reader and the validator overlapping as well.
const streamQueue = 1

// NewStream starts validating a file of the given kind; nil when files of
// that kind are not validated.
func NewStream(kind string) *Stream {
	return newStream(validator(kind, collectNone))
}

// NewFileStream starts validating the file at rel (relative to the graph
// directory), gathering the names the cross-file invariants compare when
// it is one of the stores they involve; nil when rel is not validated.
func NewFileStream(rel string) *Stream {
	return newStream(validator(KindOf(rel), collectFor(rel)))
}

func newStream(validate func(*input) *FileStats) *Stream {
	if validate == nil {
		return nil
	}
	s := &Stream{pieces: make(chan piece, streamQueue), result: make(chan *FileStats, 1)}
	go func() {
		var held piece
		more := func() []byte {
			for {
				if held.done != nil {
					held.done()
				}
				var ok bool
				if held, ok = <-s.pieces; !ok {
					held = piece{}
					return nil
				}
				if len(held.data) > 0 { // nil means the end
					return held.data
				}
			}
		}
		st := validate(&input{more: more})
		for more() != nil { // a problem stops the validator early; the writer must never block
		}
		s.result <- st
	}()
	return s
}

// Write hands p over: the caller must not change it until done (which may
// be nil) is called, once validation no longer reads it. A nil Stream takes
// nothing and never calls done.
func (s *Stream) Write(p []byte, done func()) {
	if s == nil {
		return
	}
	s.pieces <- piece{p, done}
}

// Close ends the file and returns what validation found.
func (s *Stream) Close() *FileStats {
	if s == nil {
		return nil
	}
	close(s.pieces)
	return <-s.result
}

func validator(kind string, c collect) func(*input) *FileStats {
	switch kind {
	case KindGraphML:
		return func(in *input) *FileStats { return validateGraphML(in, c == collectGraph) }
	case KindKV:
		return func(in *input) *FileStats { return validateKV(in, c) }
	case KindVDB:
		return func(in *input) *FileStats { return validateVDB(in, c) }
	}
	return nil
}

// input is what the validators read: the file's bytes in pieces, with byte
// and run access that stays inside one piece (no copying into a buffer).
type input struct {
	buf  []byte
	pos  int   // next byte in buf
	base int64 // file offset of buf[0]
	more func() []byte
	done bool
}

// next returns the next byte; ok is false at the end of the file.
func (in *input) next() (c byte, ok bool) {
	if in.pos < len(in.buf) {
		c = in.buf[in.pos]
		in.pos++
		return c, true
	}
	if !in.fill() {
		return 0, false
	}
	in.pos = 1
	return in.buf[0], true
}

// back un-reads the byte next just returned.
func (in *input) back() { in.pos-- }

// rest returns the unread bytes of the current piece, taking the next piece
// when it is used up; nil at the end of the file. Callers consume what they
// use by advancing in.pos.
func (in *input) rest() []byte {
	if in.pos == len(in.buf) && !in.fill() {
		return nil
	}
	return in.buf[in.pos:]
}

// offset is how many bytes have been consumed.
func (in *input) offset() int64 { return in.base + int64(in.pos) }

// fill moves to the next non-empty piece. The previous one is no longer
// referenced after this.
func (in *input) fill() bool {
	if in.done {
		return false
	}
	in.base += int64(len(in.buf))
	in.buf, in.pos = nil, 0
	for {
		p := in.more()
		if p == nil {
			in.done = true
			return false
		}
		if len(p) > 0 {
			in.buf = p
			return true
		}
	}
}
