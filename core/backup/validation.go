package backup

import (
	"io"

	"github.com/graphkeep/graphkeep/core/lightrag"
)

// validation runs LightRAG validation beside a read: the bytes the backup
// or restore already has are handed to it, so a file is read once. It runs
// on its own goroutine behind a short queue, so it slows the read only when
// it falls behind by more than the queue. A nil *validation does nothing.
type validation struct {
	queue  chan []byte
	result chan *lightrag.FileStats
}

// validationQueue bounds the memory a lagging validator holds (chunks are
// at most a few MiB).
const validationQueue = 4

func startValidation(kind string) *validation {
	v := &validation{queue: make(chan []byte, validationQueue), result: make(chan *lightrag.FileStats, 1)}
	pr, pw := io.Pipe()
	go func() {
		for data := range v.queue {
			if data == nil {
				_ = pw.CloseWithError(io.ErrUnexpectedEOF)
				for range v.queue {
				}
				return
			}
			_, _ = pw.Write(data) // the validator drains everything, even after a problem
		}
		_ = pw.Close()
	}()
	go func() {
		st := lightrag.Validate(kind, pr)
		_ = pr.Close()
		v.result <- st
	}()
	return v
}

// write queues a copy of p.
func (v *validation) write(p []byte) {
	if v != nil && len(p) > 0 {
		v.queue <- append([]byte(nil), p...)
	}
}

// finish ends the stream and returns the result.
func (v *validation) finish() *lightrag.FileStats {
	if v == nil {
		return nil
	}
	close(v.queue)
	return <-v.result
}

// cancel abandons the validation.
func (v *validation) cancel() {
	if v != nil {
		v.queue <- nil
		close(v.queue)
		<-v.result
	}
}
