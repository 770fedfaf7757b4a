package chunker_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/graphkeep/graphkeep/core/chunker"
)

func chunks(t testing.TB, data []byte, p chunker.Params) [][]byte {
	t.Helper()
	c, err := chunker.New(bytes.NewReader(data), p)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		b, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
}

func random(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}

func TestChunksReassembleAndRespectBounds(t *testing.T) {
	p, err := chunker.ParamsForAverage(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, p.MinSize, p.MaxSize + 1, 5 << 20} {
		data := random(n, uint64(n))
		cs := chunks(t, data, p)
		if got := bytes.Join(cs, nil); !bytes.Equal(got, data) {
			t.Fatalf("n=%d: chunks do not reassemble the input", n)
		}
		for i, c := range cs {
			if len(c) > p.MaxSize || (len(c) < p.MinSize && i != len(cs)-1) {
				t.Fatalf("n=%d: chunk %d has %d bytes, outside [%d, %d]", n, i, len(c), p.MinSize, p.MaxSize)
			}
		}
		if n == 5<<20 {
			avg := n / len(cs)
			if avg < p.AvgSize/2 || avg > p.AvgSize*2 {
				t.Fatalf("average chunk %d bytes, want near %d", avg, p.AvgSize)
			}
		}
	}
}

// Boundaries depend on the bytes only, never on how the reader splits
// them: the chunker scans a chunk as its data arrives and resumes where it
// stopped.
func TestBoundariesDoNotDependOnReadSizes(t *testing.T) {
	p, err := chunker.ParamsForAverage(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Random data, then zeros (no boundary: every chunk is cut at MaxSize),
	// then random again.
	data := slices.Concat(random(900<<10, 1), make([]byte, 3*p.MaxSize+123), random(700<<10, 2))
	want := chunks(t, data, p)
	readers := map[string]func() io.Reader{
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"eof w/data": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"uneven":     func() io.Reader { return &unevenReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(7, 7))} },
	}
	for name, reader := range readers {
		t.Run(name, func(t *testing.T) {
			c, err := chunker.New(reader(), p)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				b, err := c.Next()
				if err == io.EOF {
					if i != len(want) {
						t.Fatalf("%d chunks, want %d", i, len(want))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(want) || !bytes.Equal(b, want[i]) {
					t.Fatalf("chunk %d differs from the one cut from whole reads", i)
				}
			}
		})
	}
}

// unevenReader returns reads of random sizes from 1 byte to 100 KiB, and
// sometimes none.
type unevenReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (u *unevenReader) Read(p []byte) (int, error) {
	n := min(len(p), u.rng.IntN(100<<10))
	return u.r.Read(p[:n])
}

// An insertion near the start must leave most later chunks unchanged: the
// whole point of content-defined chunking.
func TestInsertionShiftsFewChunks(t *testing.T) {
	p, _ := chunker.ParamsForAverage(64<<10, 7)
	data := random(8<<20, 3)
	edited := append(append(bytes.Clone(data[:100000]), []byte("inserted text")...), data[100000:]...)
	before := map[string]bool{}
	for _, c := range chunks(t, data, p) {
		before[string(c)] = true
	}
	after := chunks(t, edited, p)
	same := 0
	for _, c := range after {
		if before[string(c)] {
			same++
		}
	}
	if same < len(after)-3 {
		t.Fatalf("only %d of %d chunks survive a 13-byte insertion", same, len(after))
	}
}

func TestSeedChangesBoundaries(t *testing.T) {
	a, _ := chunker.ParamsForAverage(64<<10, 1)
	b, _ := chunker.ParamsForAverage(64<<10, 2)
	data := random(2<<20, 9)
	if len(chunks(t, data, a)[0]) == len(chunks(t, data, b)[0]) {
		t.Fatal("two seeds cut the first chunk at the same place")
	}
}

func TestValidate(t *testing.T) {
	for _, avg := range []int{1000, 3 << 20, 1 << 10} {
		if _, err := chunker.ParamsForAverage(avg, 0); err == nil {
			t.Errorf("average %d accepted", avg)
		}
	}
}

func BenchmarkChunker(b *testing.B) {
	data := random(64<<20, 1)
	p := chunker.DefaultParams(1)
	c, _ := chunker.New(bytes.NewReader(data), p)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	}
}
