package backup

import (
	"io"

	"github.com/graphkeep/graphkeep/core/lightrag"
)

// validation runs LightRAG validation beside a read: the bytes the backup
// or restore already has are streamed to it, so a file is read once. A nil
// *validation does nothing.
type validation struct {
	w      *io.PipeWriter
	result chan *lightrag.FileStats
}

func startValidation(kind string) *validation {
	pr, pw := io.Pipe()
	v := &validation{w: pw, result: make(chan *lightrag.FileStats, 1)}
	go func() {
		st := lightrag.Validate(kind, pr)
		_ = pr.Close()
		v.result <- st
	}()
	return v
}

func (v *validation) write(p []byte) {
	if v != nil {
		_, _ = v.w.Write(p) // the validator drains everything, even after a problem
	}
}

// finish ends the stream and returns the result.
func (v *validation) finish() *lightrag.FileStats {
	if v == nil {
		return nil
	}
	_ = v.w.Close()
	return <-v.result
}

func (v *validation) cancel() {
	if v != nil {
		_ = v.w.CloseWithError(io.ErrUnexpectedEOF)
		<-v.result
	}
}
